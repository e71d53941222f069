"""Sliding windows: ``unfold`` (im2col) and its adjoint ``fold`` (col2im), for convolution and pooling, and
``unfold_batch``/``fold_batch``, the same with the columns of all images side by side."""

from __future__ import annotations

from .. import arguments
from ..autograd.grad_mode import state as grad_state
from ..autograd.graph import record
from ..backend.kernels import out_size, window_blocks
from ..errors import ShapeError
from ._operands import Tensor, _wrap

# the least value of each window argument: windows of at least one element that move, no negative padding
_LEAST = {"kernel_size": 1, "stride": 1, "dilation": 1, "padding": 0, "output_size": 0, "output_padding": 0}


def pair(v, name: str, op: str = "window") -> tuple:
    """A window argument (an int or a pair of ints) as a checked pair: kernel size, stride and dilation
    at least 1, padding and output size at least 0 (the same rule for every backend)."""
    if type(v) is tuple and len(v) == 2 and type(v[0]) is int and type(v[1]) is int and \
            v[0] >= _LEAST[name] and v[1] >= _LEAST[name]:
        return v  # already checked (the common case: ops pass on what a layer checked)
    return arguments.pair(v, name, op, _LEAST[name])


def single(v, name: str, op: str = "window") -> int:
    """A 1-D window argument (an int or a one-element tuple, as PyTorch's ``_single``) as a checked int."""
    if isinstance(v, (tuple, list)):
        if len(v) != 1:
            raise ValueError(f"{op}: {name} must be an int or a one-element tuple, got {tuple(v)}")
        v = v[0]
    return arguments.integer(v, name, op, _LEAST[name])


def _geometry(kernel_size, dilation, padding, stride, op: str = "window"):
    return (pair(kernel_size, "kernel_size", op), pair(stride, "stride", op), pair(padding, "padding", op),
            pair(dilation, "dilation", op))


def check_output(size: tuple, ks, st, pd, dl, op: str) -> tuple:
    """The output size (oh, ow) of windows over an image of ``size`` (H, W), or a ShapeError if none fit."""
    oh, ow = (out_size(size[i], ks[i], st[i], pd[i], dl[i]) for i in (0, 1))
    if oh <= 0 or ow <= 0:
        raise ShapeError(f"{op}: kernel {ks} (dilation {dl}, padding {pd}) is larger than the input {tuple(size)}")
    return oh, ow


def _unfold_geometry(x: Tensor, kernel_size, dilation, padding, stride, op: str):
    """The geometry of unfolding ``x``, checked."""
    if x.ndim != 4:
        raise ShapeError(f"{op}: expected an (N, C, H, W) input, got shape {x.shape}")
    ks, st, pd, dl = _geometry(kernel_size, dilation, padding, stride, op)
    check_output(x.shape[2:], ks, st, pd, dl, op)
    return ks, st, pd, dl


def _fold_geometry(output_size, kernel_size, dilation, padding, stride):
    ks, st, pd, dl = _geometry(kernel_size, dilation, padding, stride, "fold")
    size = pair(output_size, "output_size", "fold")
    return size, window_blocks(size, ks, st, pd, dl), ks, st, pd, dl


def unfold(x: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Sliding blocks of an (N, C, H, W) input as columns: (N, C*kh*kw, L), as ``torch.nn.functional.unfold``."""
    return _unfold(x, kernel_size, dilation, padding, stride, batch=False)


def fold(cols: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Sum columns (N, C*kh*kw, L) back into an (N, C, H, W) image: the adjoint of ``unfold``."""
    return _fold(cols, output_size, kernel_size, dilation, padding, stride, batch=False)


def unfold_batch(x: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """``unfold``'s columns of all N images side by side: (C*kh*kw, N*L), element [k, n*L + l] being
    ``unfold(x)[n, k, l]``, so that one matrix product convolves the whole batch."""
    return _unfold(x, kernel_size, dilation, padding, stride, batch=True)


def fold_batch(cols: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Sum columns (C*kh*kw, N*L), laid out as ``unfold_batch`` makes them, back into (N, C, H, W) images:
    the adjoint of ``unfold_batch``."""
    return _fold(cols, output_size, kernel_size, dilation, padding, stride, batch=True)


def _unfold(x: Tensor, kernel_size, dilation, padding, stride, batch: bool) -> Tensor:
    op = "unfold_batch" if batch else "unfold"
    ks, st, pd, dl = _unfold_geometry(x, kernel_size, dilation, padding, stride, op)
    out = _wrap(getattr(x._device.kernels, op)(x._data, ks, st, pd, dl), x._device)
    if x.requires_grad and grad_state.enabled:
        size = x.shape[2:]
        record(out, "UnfoldBatch" if batch else "Unfold", (x,),
               lambda g, o: (_fold(g, size, ks, dl, pd, st, batch),), saved=())
    return out


def _fold(cols: Tensor, output_size, kernel_size, dilation, padding, stride, batch: bool) -> Tensor:
    op = "fold_batch" if batch else "fold"
    size, blocks, ks, st, pd, dl = _fold_geometry(output_size, kernel_size, dilation, padding, stride)
    window = ks[0] * ks[1]
    if batch and (cols.ndim != 2 or cols.shape[0] % window or cols.shape[1] % blocks):
        raise ShapeError(f"{op}: input of shape {cols.shape} does not fit kernel {ks} and output size {size} "
                         f"(expected (C*{window}, N*{blocks}))")
    if not batch and (cols.ndim != 3 or cols.shape[1] % window or cols.shape[2] != blocks):
        raise ShapeError(f"{op}: input of shape {cols.shape} does not fit kernel {ks} and output size {size} "
                         f"(expected (N, C*{window}, {blocks}))")
    out = _wrap(getattr(cols._device.kernels, op)(cols._data, size, ks, st, pd, dl), cols._device)
    if cols.requires_grad and grad_state.enabled:
        record(out, "FoldBatch" if batch else "Fold", (cols,),
               lambda g, o: (_unfold(g, ks, dl, pd, st, batch),), saved=())
    return out


def max_pool2d(x: Tensor, kernel_size, stride, padding, dilation) -> Tensor:
    """Max over windows of an (N, C, H, W) float input (padding counts as -inf). The gradient goes to
    the first maximum of each window, as in PyTorch."""
    ks, st, pd, dl = _geometry(kernel_size, dilation, padding, stride, "max_pool2d")
    check_output(x.shape[2:], ks, st, pd, dl, "max_pool2d")
    dev = x._device
    out, indices = dev.kernels.max_pool2d(x._data, ks, st, pd, dl)
    out = _wrap(out, dev)
    if x.requires_grad and grad_state.enabled:
        indices, size = _wrap(indices, dev), x.shape[2:]
        record(out, "MaxPool2d", (x,), lambda g, o: (_max_pool2d_backward(g, indices, size, ks, st, pd, dl),),
               saved=())
    return out


def _max_pool2d_backward(g: Tensor, indices: Tensor, size, ks, st, pd, dl) -> Tensor:
    out = _wrap(g._device.kernels.max_pool2d_backward(g._data, indices._data, size, ks, st, pd, dl), g._device)
    if g.requires_grad and grad_state.enabled:
        record(out, "MaxPool2dBackward", (g,), lambda gg, o: (_pick_windows(gg, indices, ks, st, pd, dl),),
               saved=())
    return out


def _pick_windows(x: Tensor, indices: Tensor, ks, st, pd, dl) -> Tensor:
    """The value of ``x`` (N, C, H, W) at each window's indexed position: the adjoint of the backward."""
    from ..creation import arange

    n, c, h, w = x.shape
    oh, ow = indices.shape[2:]
    cols = unfold(x.reshape(n * c, 1, h, w), ks, dl, pd, st)  # (N*C, kh*kw, OH*OW)
    hit = indices.reshape(n * c, 1, oh * ow) == arange(ks[0] * ks[1], device=x.device).reshape(1, -1, 1)
    return (cols * hit.to(x.dtype)).sum(1).reshape(n, c, oh, ow)
