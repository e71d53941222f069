"""Sliding windows: ``unfold`` (im2col) and its adjoint ``fold`` (col2im), for convolution and pooling, and
``unfold_batch``/``fold_batch``, the same with the columns of all images side by side."""

from __future__ import annotations

from ..autograd.grad_mode import state as grad_state
from ..autograd.graph import record
from ..errors import ShapeError
from ._operands import Tensor, _wrap


def pair(v, name: str) -> tuple:
    """An int or a pair of ints as a pair."""
    if isinstance(v, int):
        return (v, v)
    v = tuple(int(i) for i in v)
    if len(v) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {v}")
    return v


def out_size(size: int, k: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def _geometry(kernel_size, dilation, padding, stride):
    return (pair(kernel_size, "kernel_size"), pair(stride, "stride"), pair(padding, "padding"),
            pair(dilation, "dilation"))


def _unfold_geometry(x: Tensor, kernel_size, dilation, padding, stride, op: str):
    """The geometry of unfolding ``x``, checked."""
    if x.ndim != 4:
        raise ShapeError(f"{op}: expected an (N, C, H, W) input, got shape {x.shape}")
    ks, st, pd, dl = _geometry(kernel_size, dilation, padding, stride)
    oh, ow = (out_size(x.shape[2 + i], ks[i], st[i], pd[i], dl[i]) for i in (0, 1))
    if oh <= 0 or ow <= 0:
        raise ShapeError(f"{op}: kernel {ks} (dilation {dl}, padding {pd}) is larger than the input {x.shape[2:]}")
    return ks, st, pd, dl


def _fold_geometry(output_size, kernel_size, dilation, padding, stride):
    ks, st, pd, dl = _geometry(kernel_size, dilation, padding, stride)
    size = pair(output_size, "output_size")
    blocks = out_size(size[0], ks[0], st[0], pd[0], dl[0]) * out_size(size[1], ks[1], st[1], pd[1], dl[1])
    return size, blocks, ks, st, pd, dl


def unfold(x: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Sliding blocks of an (N, C, H, W) input as columns: (N, C*kh*kw, L), as ``torch.nn.functional.unfold``."""
    ks, st, pd, dl = _unfold_geometry(x, kernel_size, dilation, padding, stride, "unfold")
    out = _wrap(x._device.kernels.unfold(x._data, ks, st, pd, dl), x._device)
    if x.requires_grad and grad_state.enabled:
        size = x.shape[2:]
        record(out, "Unfold", (x,), lambda g, o: (fold(g, size, ks, dl, pd, st),))
    return out


def fold(cols: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Sum columns (N, C*kh*kw, L) back into an (N, C, H, W) image: the adjoint of ``unfold``."""
    size, blocks, ks, st, pd, dl = _fold_geometry(output_size, kernel_size, dilation, padding, stride)
    if cols.ndim != 3 or cols.shape[1] % (ks[0] * ks[1]) or cols.shape[2] != blocks:
        raise ShapeError(f"fold: input of shape {cols.shape} does not fit kernel {ks} and output size {size} "
                         f"(expected (N, C*{ks[0] * ks[1]}, {blocks}))")
    out = _wrap(cols._device.kernels.fold(cols._data, size, ks, st, pd, dl), cols._device)
    if cols.requires_grad and grad_state.enabled:
        record(out, "Fold", (cols,), lambda g, o: (unfold(g, ks, dl, pd, st),))
    return out


def unfold_batch(x: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """``unfold``'s columns of all N images side by side: (C*kh*kw, N*L), element [k, n*L + l] being
    ``unfold(x)[n, k, l]``, so that one matrix product convolves the whole batch."""
    ks, st, pd, dl = _unfold_geometry(x, kernel_size, dilation, padding, stride, "unfold_batch")
    out = _wrap(x._device.kernels.unfold_batch(x._data, ks, st, pd, dl), x._device)
    if x.requires_grad and grad_state.enabled:
        size = x.shape[2:]
        record(out, "UnfoldBatch", (x,), lambda g, o: (fold_batch(g, size, ks, dl, pd, st),))
    return out


def fold_batch(cols: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Sum columns (C*kh*kw, N*L), laid out as ``unfold_batch`` makes them, back into (N, C, H, W) images:
    the adjoint of ``unfold_batch``."""
    size, blocks, ks, st, pd, dl = _fold_geometry(output_size, kernel_size, dilation, padding, stride)
    if cols.ndim != 2 or cols.shape[0] % (ks[0] * ks[1]) or cols.shape[1] % blocks:
        raise ShapeError(f"fold_batch: input of shape {cols.shape} does not fit kernel {ks} and output size {size} "
                         f"(expected (C*{ks[0] * ks[1]}, N*{blocks}))")
    out = _wrap(cols._device.kernels.fold_batch(cols._data, size, ks, st, pd, dl), cols._device)
    if cols.requires_grad and grad_state.enabled:
        record(out, "FoldBatch", (cols,), lambda g, o: (unfold_batch(g, ks, dl, pd, st),))
    return out


def max_pool2d(x: Tensor, kernel_size, stride, padding, dilation) -> Tensor:
    """Max over windows of an (N, C, H, W) float input (padding counts as -inf). The gradient goes to
    the first maximum of each window, as in PyTorch."""
    ks, st, pd, dl = _geometry(kernel_size, dilation, padding, stride)
    dev = x._device
    out, indices = dev.kernels.max_pool2d(x._data, ks, st, pd, dl)
    out = _wrap(out, dev)
    if x.requires_grad and grad_state.enabled:
        indices, size = _wrap(indices, dev), x.shape[2:]
        record(out, "MaxPool2d", (x,), lambda g, o: (_max_pool2d_backward(g, indices, size, ks, st, pd, dl),))
    return out


def _max_pool2d_backward(g: Tensor, indices: Tensor, size, ks, st, pd, dl) -> Tensor:
    out = _wrap(g._device.kernels.max_pool2d_backward(g._data, indices._data, size, ks, st, pd, dl), g._device)
    if g.requires_grad and grad_state.enabled:
        record(out, "MaxPool2dBackward", (g,), lambda gg, o: (_pick_windows(gg, indices, ks, st, pd, dl),))
    return out


def _pick_windows(x: Tensor, indices: Tensor, ks, st, pd, dl) -> Tensor:
    """The value of ``x`` (N, C, H, W) at each window's indexed position: the adjoint of the backward."""
    from ..creation import arange

    n, c, h, w = x.shape
    oh, ow = indices.shape[2:]
    cols = unfold(x.reshape(n * c, 1, h, w), ks, dl, pd, st)  # (N*C, kh*kw, OH*OW)
    hit = indices.reshape(n * c, 1, oh * ow) == arange(ks[0] * ks[1], device=x.device).reshape(1, -1, 1)
    return (cols * hit.to(x.dtype)).sum(1).reshape(n, c, oh, ow)
