"""Stateless layer functions and losses, as ``torch.nn.functional`` names them."""

from __future__ import annotations

import math
import warnings

import numpy as np

from .. import creation
from ..arguments import boolean, choice, integer, number
from ..autograd.grad_mode import no_grad
from ..backend.kernels import out_size
from ..caches import constant, remember
from ..capture import recording
from ..errors import DTypeError, ShapeError
from ..ops import (
    erf,
    exp,
    expm1,
    fold,
    linear,
    log,
    log1p,
    logsumexp,
    mean,
    relu,
    sigmoid,
    softmax_cross_entropy,
    sum,
    tanh,
    tensor_first,
    unfold,
    where,
)
from ..ops import expect_tensor as _tensor
from ..ops import log_softmax as _log_softmax
from ..ops import softmax as _softmax
from ..ops._operands import broadcast_shapes
from ..ops.batch_norm import batch_norm_relu_pool_train, batch_norm_train
from ..ops.bounds import check as check_indices
from ..ops.conv import conv2d as _conv2d
from ..ops.conv import conv2d_input_grad as _conv2d_input_grad
from ..ops.joining import pad as _pad_axes
from ..ops.linalg import _same_kind
from ..ops.window import check_output, pair, single
from ..ops.window import max_pool2d as _max_pool2d
from ..tensor import Tensor
from .resampling import adaptive_avg_pool2d, interpolate
from .similarity import cosine_similarity, normalize, pairwise_distance

unfold, fold = (tensor_first(f) for f in (unfold, fold))  # (the other ops name a non-tensor themselves)

__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "batch_norm",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "conv1d",
    "conv2d",
    "conv_transpose1d",
    "conv_transpose2d",
    "cosine_similarity",
    "cross_entropy",
    "dropout",
    "dropout2d",
    "elu",
    "embedding",
    "fold",
    "gelu",
    "group_norm",
    "huber_loss",
    "interpolate",
    "kl_div",
    "l1_loss",
    "layer_norm",
    "leaky_relu",
    "linear",
    "log_softmax",
    "logsumexp",
    "max_pool1d",
    "max_pool2d",
    "mse_loss",
    "nll_loss",
    "normalize",
    "one_hot",
    "pad",
    "pairwise_distance",
    "relu",
    "sigmoid",
    "silu",
    "smooth_l1_loss",
    "softmax",
    "softplus",
    "tanh",
    "unfold",
]


# -- convolution and pooling ------------------------------------------------------------------------


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation) of (N, C, H, W) with weight (O, C/groups, kh, kw), as PyTorch's.

    A weight (T, O, C/groups, kh, kw) with bias (T, O) holds one filter bank per task: the N rows of
    ``input`` are then T tasks one after another, task t convolved with its own weights (see nn.task_axis).
    Differentiable to any order (see ``neurenix.ops.conv``).
    """
    groups = _check_conv(input, weight, bias, groups, 2, "conv2d")
    st, pd, dl = (pair(v, name, "conv2d") for v, name in ((stride, "stride"), (padding, "padding"),
                                                           (dilation, "dilation")))
    check_output(input.shape[2:], weight.shape[-2:], st, pd, dl, "conv2d")
    operands = _same_kind("conv2d", input, weight, *(() if bias is None else (bias,)))
    if operands[0].dtype.is_floating_point is False:
        raise DTypeError(f"conv2d: takes float32 or float64 tensors, got {operands[0].dtype} (cast with .float())")
    return _conv2d(*operands[:2], operands[2] if bias is not None else None, st, pd, dl, groups)


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """1-D convolution (cross-correlation) of (N, C, L) or (C, L) with weight (O, C/groups, k), as PyTorch's: conv2d
    on a unit height. A weight (T, O, C/groups, k) with bias (T, O) holds one filter bank per task, as conv2d's."""
    _tensor(input, "input", "conv1d")
    x = input.unsqueeze(0) if input.ndim == 2 else input  # (C, L): one unbatched sequence, as PyTorch
    groups = _check_conv(x, weight, bias, groups, 1, "conv1d")
    _, st, pd, dl = _window1d(x, weight.shape[-1], stride, padding, dilation, "conv1d")
    out = conv2d(x.unsqueeze(2), weight.unsqueeze(-2), bias, st, pd, dl, groups).squeeze(2)
    return out if input.ndim == 3 else out.squeeze(0)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """2-D transposed convolution of (N, C, H, W) or (C, H, W) with weight (C, O/groups, kh, kw), as PyTorch's:
    the gradient of ``conv2d`` with respect to its input, so differentiable to any order; an output of
    ``(H - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1`` rows (columns alike)."""
    op = "conv_transpose2d"
    _tensor(input, "input", op), _tensor(weight, "weight", op)
    x = input.unsqueeze(0) if input.ndim == 3 else input  # (C, H, W): one unbatched image, as PyTorch
    if x.ndim != 4 or weight.ndim != 4:
        raise ShapeError(f"{op}: expected input (N, C, H, W) and weight (C, O/groups, kh, kw), got {input.shape} "
                         f"and {weight.shape}")
    groups = integer(groups, "groups", op, minimum=1)
    st, pd, op_pad, dl = (pair(v, name, op) for v, name in ((stride, "stride"), (padding, "padding"),
                                                             (output_padding, "output_padding"),
                                                             (dilation, "dilation")))
    n, c, h, w = x.shape
    if weight.shape[0] != c or c % groups or min(weight.shape[2:]) < 1:
        raise ShapeError(f"{op}: input with {c} channels does not fit weight {weight.shape} with groups={groups} "
                         "(weight is (in_channels, out_channels/groups, kh, kw))")
    if any(o >= max(s, d) for o, s, d in zip(op_pad, st, dl)):
        raise ValueError(f"{op}: output_padding {op_pad} must be smaller than stride {st} or dilation {dl}")
    size = _conv_transpose_size((h, w), weight.shape[2:], st, pd, dl, op_pad)
    if min(size) <= 0:
        raise ShapeError(f"{op}: an input of {(h, w)} with kernel {tuple(weight.shape[2:])}, stride {st} and "
                         f"padding {pd} gives no output ({size})")
    out_channels = weight.shape[1] * groups
    if bias is not None and tuple(_tensor(bias, "bias", op).shape) != (out_channels,):
        raise ShapeError(f"{op}: bias of shape {bias.shape} does not fit {out_channels} output channels")
    operands = _same_kind(op, x, weight, *(() if bias is None else (bias,)))
    if operands[0].dtype.is_floating_point is False:
        raise DTypeError(f"{op}: takes float32 or float64 tensors, got {operands[0].dtype} (cast with .float())")
    x, weight = operands[:2]
    # an output_padding of a stride or more (possible under dilation) adds input rows that reach no one: zeros
    extra = [o // s for o, s in zip(op_pad, st)]
    if any(extra):
        x = _pad_axes(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
    out = _conv2d_input_grad(x, weight, (n, out_channels, *size), st, pd, dl, groups)
    if bias is not None:
        out = out + operands[2].reshape(1, -1, 1, 1)
    return out if input.ndim == 4 else out.squeeze(0)


def _conv_transpose_size(size: tuple, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple,
                        output_padding: tuple) -> tuple:
    """The output size of a transposed convolution: per axis ``(i - 1) * s - 2 * p + d * (k - 1) + o + 1``."""
    return tuple((i - 1) * s - 2 * p + d * (k - 1) + o + 1
                 for i, k, s, p, d, o in zip(size, kernel, stride, padding, dilation, output_padding))


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """1-D transposed convolution of (N, C, L) or (C, L) with weight (C, O/groups, k), as PyTorch's:
    ``conv_transpose2d`` on a unit height."""
    op = "conv_transpose1d"
    _tensor(input, "input", op), _tensor(weight, "weight", op)
    if input.ndim not in (2, 3) or weight.ndim != 3:
        raise ShapeError(f"{op}: expected input (N, C, L) and weight (C, O/groups, k), got {input.shape} and "
                         f"{weight.shape}")
    s, p, o, d = (single(v, name, op) for v, name in ((stride, "stride"), (padding, "padding"),
                                                       (output_padding, "output_padding"), (dilation, "dilation")))
    out = conv_transpose2d(input.unsqueeze(-2), weight.unsqueeze(-2), bias, (1, s), (0, p), (0, o), groups, (1, d))
    return out.squeeze(-2)


def _check_conv(input: Tensor, weight: Tensor, bias: Tensor | None, groups, dims: int, op: str) -> int:
    """Check a ``dims``-D convolution's tensors (weight (O, C/groups, *kernel), or per task (T, O, ...)), return
    ``groups`` checked."""
    _tensor(input, "input", op), _tensor(weight, "weight", op)
    if bias is not None:
        _tensor(bias, "bias", op)
    if input.ndim != dims + 2 or weight.ndim not in (dims + 2, dims + 3):
        layout = ("(N, C, L)", "(O, C/groups, k)") if dims == 1 else ("(N, C, H, W)", "(O, C/groups, kh, kw)")
        raise ShapeError(f"{op}: expected input {layout[0]} and weight {layout[1]}, got {input.shape} and "
                         f"{weight.shape}")
    groups = integer(groups, "groups", op, minimum=1)
    n, c = input.shape[:2]
    t = weight.shape[0] if weight.ndim == dims + 3 else 1
    o, cg, kernel = weight.shape[-dims - 2], weight.shape[-dims - 1], weight.shape[-dims:]
    if min(kernel) < 1:
        raise ShapeError(f"{op}: weight {weight.shape} has an empty kernel {kernel}; kernels need at least one element")
    if c % groups or o % groups or cg != c // groups:
        raise ShapeError(f"{op}: input with {c} channels does not fit weight {weight.shape} with groups={groups}")
    if t == 0 or n % t:
        raise ShapeError(f"{op}: {n} input rows do not split into the {t} tasks of weight {weight.shape}")
    if bias is not None and tuple(bias.shape) != tuple(weight.shape[:-dims - 1]):
        raise ShapeError(f"{op}: bias of shape {bias.shape} does not fit weight {weight.shape} (expected "
                         f"{tuple(weight.shape[:-dims - 1])})")
    return groups


def _window1d(input: Tensor, kernel_size, stride, padding, dilation, op: str) -> tuple:
    """A 1-D window op's arguments checked on ``input``'s last axis, as the 2-D op's pairs of unit height."""
    k, s, p, d = (single(v, name, op) for v, name in ((kernel_size, "kernel_size"), (stride, "stride"),
                                                       (padding, "padding"), (dilation, "dilation")))
    if out_size(input.shape[-1], k, s, p, d) <= 0:
        raise ShapeError(f"{op}: kernel {k} (dilation {d}, padding {p}) is longer than the input of length "
                         f"{input.shape[-1]}")
    return (1, k), (1, s), (0, p), (1, d)


def _pool_windows(input: Tensor, kernel_size, stride, padding, dilation, pad_value: float, op: str):
    _tensor(input, "input", op)
    if input.ndim not in (3, 4):
        raise ShapeError(f"{op}: expected an (N, C, H, W) or (C, H, W) input, got shape {input.shape}")
    x = input if input.ndim == 4 else input.unsqueeze(0)
    n, c, h, w = x.shape
    ks = pair(kernel_size, "kernel_size", op)
    st = pair(stride if stride is not None else kernel_size, "stride", op)
    pd, dl = pair(padding, "padding", op), pair(dilation, "dilation", op)
    if pd[0] > ks[0] // 2 or pd[1] > ks[1] // 2:
        raise ValueError(f"{op}: padding {pd} must be at most half the kernel size {ks}")
    oh, ow = check_output((h, w), ks, st, pd, dl, op)
    x = x.reshape(n * c, 1, h, w)
    if pd != (0, 0):
        x = _pad_axes(x, ((0, 0), (0, 0), (pd[0], pd[0]), (pd[1], pd[1])), pad_value)
    cols = unfold(x, ks, dl, 0, st)  # (N*C, kh*kw, L)
    shape = (n, c, oh, ow) if input.ndim == 4 else (c, oh, ow)
    return cols, shape


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False) -> Tensor:
    """Max over sliding windows (padding counts as -inf)."""
    _tensor(input, "input", "max_pool2d")
    if ceil_mode:
        raise NotImplementedError("max_pool2d: ceil_mode=True is not supported")
    if input.ndim not in (3, 4):
        raise ShapeError(f"max_pool2d: expected an (N, C, H, W) or (C, H, W) input, got shape {input.shape}")
    ks, pd = pair(kernel_size, "kernel_size", "max_pool2d"), pair(padding, "padding", "max_pool2d")
    if pd[0] > ks[0] // 2 or pd[1] > ks[1] // 2:
        raise ValueError(f"max_pool2d: padding {pd} must be at most half the kernel size {ks}")
    x = input if input.ndim == 4 else input.unsqueeze(0)
    st = pair(stride if stride is not None else kernel_size, "stride", "max_pool2d")
    out = _max_pool2d(x, ks, st, pd, pair(dilation, "dilation", "max_pool2d"))
    return out if input.ndim == 4 else out.squeeze(0)


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """Mean over sliding windows (zero padding counted, as PyTorch's default)."""
    if ceil_mode or not count_include_pad:
        raise NotImplementedError("avg_pool2d: only ceil_mode=False, count_include_pad=True are supported")
    cols, shape = _pool_windows(input, kernel_size, stride, padding, 1, 0.0, "avg_pool2d")
    return mean(cols, 1).reshape(shape)


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor:
    """Max over sliding windows of an (N, C, L) or (C, L) input (padding counts as -inf): max_pool2d on a unit
    height."""
    if return_indices:
        raise NotImplementedError("max_pool1d: return_indices=True is not supported")
    x, ks, st, pd, dl = _pool1d(input, kernel_size, stride, padding, dilation, "max_pool1d")
    return max_pool2d(x, ks, st, pd, dl, ceil_mode).squeeze(-2)


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """Mean over sliding windows of an (N, C, L) or (C, L) input (zero padding counted, as PyTorch's default)."""
    x, ks, st, pd, _ = _pool1d(input, kernel_size, stride, padding, 1, "avg_pool1d")
    return avg_pool2d(x, ks, st, pd, ceil_mode, count_include_pad).squeeze(-2)


def _pool1d(input: Tensor, kernel_size, stride, padding, dilation, op: str) -> tuple:
    """A 1-D pool's input as (N, C, 1, L) or (C, 1, L) and its arguments as the 2-D pool's, checked in 1-D words."""
    _tensor(input, "input", op)
    if input.ndim not in (2, 3):
        raise ShapeError(f"{op}: expected an (N, C, L) or (C, L) input, got shape {input.shape}")
    ks, st, pd, dl = _window1d(input, kernel_size, kernel_size if stride is None else stride, padding, dilation, op)
    if pd[1] > ks[1] // 2:
        raise ValueError(f"{op}: padding {pd[1]} must be at most half the kernel size {ks[1]}")
    return input.unsqueeze(-2), ks, st, pd, dl


def pad(input: Tensor, pad: tuple, mode: str = "constant", value: float = 0.0) -> Tensor:
    """PyTorch-style padding: ``pad`` lists (before, after) pairs from the last axis backwards."""
    _tensor(input, "input", "pad")
    if mode != "constant":
        raise NotImplementedError(f"pad: only mode='constant' is supported, not {mode!r}")
    if not isinstance(pad, (tuple, list)) or len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: {pad} must hold (before, after) pairs for at most {input.ndim} axes")
    pad = [integer(p, "pad", "pad") for p in pad]
    pairs = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        pairs[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    crop = tuple(slice(max(-a, 0), n - max(-b, 0)) for (a, b), n in zip(pairs, input.shape))
    if any(s.start > s.stop for s in crop):
        raise ValueError(f"pad: negative padding {pad} crops more than the input's shape {input.shape}")
    cropped = input[crop] if any(a < 0 or b < 0 for a, b in pairs) else input  # negative padding crops
    return _pad_axes(cropped, [(max(a, 0), max(b, 0)) for a, b in pairs], value)


# -- normalisation and regularisation ---------------------------------------------------------------


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5, tasks: int = 0) -> Tensor:
    """Normalise over the batch (and spatial) axes per channel (axis 1).

    In training, batch statistics are used and the running ones (if given) are updated in place with
    ``momentum`` (the running variance with the unbiased estimate); otherwise the running ones are used.
    With ``tasks=T`` the N rows are T tasks one after another (see nn.task_axis): statistics are taken per
    task, ``weight``/``bias`` may be (T, C), and the running ones move by the mean over tasks.
    """
    _tensor(input, "input", "batch_norm")
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if t is not None:
            _tensor(t, name, "batch_norm")
    momentum, eps = number(momentum, "momentum", "batch_norm"), number(eps, "eps", "batch_norm", above=0.0)
    if input.ndim < 2:
        raise ShapeError(f"batch_norm: expected (N, C, ...) input, got shape {input.shape}")
    t, lead = max(tasks, 1), 1 if tasks else 0  # with tasks, x is (T, N/T, C, ...): channels on axis 2
    x = input.reshape(t, input.shape[0] // t, *input.shape[1:]) if tasks else input
    c = x.shape[lead + 1]
    axes = tuple(a for a in range(x.ndim) if a != lead + 1)[lead:]
    shape = (1,) * (lead + 1) + (c,) + (1,) * (x.ndim - lead - 2)
    if training:
        n = x.numel() // (c * t)
        if n <= 1:
            raise ValueError(f"batch_norm: training needs more than one value per channel, got input {input.shape}"
                             + (f" for {t} tasks" if tasks else ""))
        if _fusable(input, weight, bias):
            out, mu, var = batch_norm_train(input, weight, bias, t, eps)
            _track(running_mean, running_var, mu, var, momentum, n)
            return out
        mu = mean(x, axes, keepdim=True)
        d = x - mu
        var = mean(d * d, axes, keepdim=True)
        if running_mean is not None and running_var is not None:
            with no_grad():
                mu_c, var_c = (mu.reshape(t, c).mean(0), var.reshape(t, c).mean(0)) if tasks else \
                    (mu.reshape(c), var.reshape(c))
                running_mean.mul_(1 - momentum).add_(mu_c * momentum)
                running_var.mul_(1 - momentum).add_(var_c * (momentum * n / (n - 1)))
        scale = (var + eps).rsqrt()
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: evaluation without batch statistics needs running_mean and running_var")
        d, scale = x - running_mean.reshape(shape), (running_var.reshape(shape) + eps).rsqrt()
    # the per-channel factors are combined first, so the whole input is touched by one multiply and one add
    per_task = (t, 1, c) + shape[3:]
    if weight is not None:
        scale = scale * weight.reshape(per_task if weight.ndim == 2 else shape)
    out = d * scale
    if bias is not None:
        out = out + bias.reshape(per_task if bias.ndim == 2 else shape)
    return out.reshape(input.shape) if tasks else out


def _batch_norm_relu_pool(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                          weight: Tensor | None, bias: Tensor | None, momentum: float, eps: float,
                          tasks: int = 0) -> Tensor:
    """``max_pool2d(relu(batch_norm(input, ..., training=True)), 2)``: one op where the operands suit it (an
    (N, C, H, W) float input, H and W at least 2, parameters of its dtype and device), else the three (which
    say what is wrong with the operands). A BatchNorm2d, ReLU, MaxPool2d(2) run of layers in ``Sequential``
    comes here."""
    t = max(tasks, 1)
    n = input.numel() // (input.shape[1] * t) if isinstance(input, Tensor) and input.ndim == 4 and input.shape[1] else 0
    if n <= 1 or min(input.shape[2:]) < 2 or input.shape[0] % t or not _fusable(input, weight, bias):
        return max_pool2d(relu(batch_norm(input, running_mean, running_var, weight, bias, True, momentum, eps,
                                          tasks)), 2)
    out, mu, var = batch_norm_relu_pool_train(input, weight, bias, t, eps)
    _track(running_mean, running_var, mu, var, momentum, n)
    return out


def _track(running_mean: Tensor | None, running_var: Tensor | None, mu: Tensor, var: Tensor, momentum: float,
           n: int) -> None:
    """Move the running statistics (if kept) toward a batch's (``mu`` and biased ``var``, (tasks, C), over ``n``
    values per channel and task): the mean over tasks, the variance unbiased."""
    if running_mean is not None and running_var is not None:
        with no_grad():
            running_mean.mul_(1 - momentum).add_(mu.mean(0) * momentum)
            running_var.mul_(1 - momentum).add_(var.mean(0) * (momentum * n / (n - 1)))


def _fusable(x: Tensor, *params) -> bool:
    """Whether batch-norm parameters (None, or float tensors on x's device, of x's dtype) suit the fused op."""
    return x._data.dtype.kind == "f" and all(p is None or (isinstance(p, Tensor) and p._device is x._device and
                                                           p._data.dtype is x._data.dtype) for p in params)


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalise over the last ``len(normalized_shape)`` axes (mean 0, biased variance 1), then ``* weight + bias``
    (each of ``normalized_shape``, or None)."""
    _tensor(input, "input", "layer_norm")
    shape = _normalized_shape(normalized_shape, "layer_norm")
    eps = number(eps, "eps", "layer_norm", above=0.0)
    if input.ndim < len(shape) or tuple(input.shape[input.ndim - len(shape):]) != shape:
        raise ShapeError(f"layer_norm: input of shape {input.shape} does not end in normalized_shape {shape}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and _tensor(p, name, "layer_norm").shape != shape:
            raise ShapeError(f"layer_norm: {name} of shape {p.shape} does not fit normalized_shape {shape}")
    out = _normalize(input, tuple(range(input.ndim - len(shape), input.ndim)), eps, "layer_norm")
    return _affine(out, weight, bias)


def _normalized_shape(normalized_shape, op: str) -> tuple:
    """An int or a sequence of ints as a tuple of sizes, at least one, each at least 1 (as PyTorch's layers)."""
    sizes = tuple(normalized_shape) if isinstance(normalized_shape, (tuple, list)) else (normalized_shape,)
    sizes = tuple(integer(n, "normalized_shape", op, minimum=1) for n in sizes)
    if not sizes:
        raise ValueError(f"{op}: normalized_shape must name at least one axis, got {normalized_shape!r}")
    return sizes


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalise an (N, C, ...) input over each of ``num_groups`` groups of C/num_groups channels (and the axes after
    them), per row; then ``* weight + bias`` per channel (each (C,) or None)."""
    _tensor(input, "input", "group_norm")
    num_groups = integer(num_groups, "num_groups", "group_norm", minimum=1)
    eps = number(eps, "eps", "group_norm", above=0.0)
    if input.ndim < 2:
        raise ShapeError(f"group_norm: expected an (N, C, ...) input, got shape {input.shape}")
    n, c = input.shape[:2]
    if c % num_groups:
        raise ValueError(f"group_norm: num_groups ({num_groups}) must divide the input's channels ({c}), input shape "
                         f"{input.shape}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and _tensor(p, name, "group_norm").shape != (c,):
            raise ShapeError(f"group_norm: {name} of shape {p.shape} does not fit the input's {c} channels")
    group = (c // num_groups) * math.prod(input.shape[2:])  # (not -1: an empty batch leaves it undetermined)
    out = _normalize(input.reshape(n, num_groups, group), (2,), eps, "group_norm").reshape(input.shape)
    per_channel = (c,) + (1,) * (input.ndim - 2)
    return _affine(out, *(None if p is None else p.reshape(per_channel) for p in (weight, bias)))


def _normalize(x: Tensor, axes: tuple, eps: float, op: str) -> Tensor:
    """``(x - mean) / sqrt(var + eps)`` over ``axes`` (the biased variance, as PyTorch's layer and group norms)."""
    if not x.is_floating_point():
        raise DTypeError(f"{op}: takes float32 or float64 input, got {x.dtype}")
    d = x - mean(x, axes, keepdim=True)
    return d * (mean(d * d, axes, keepdim=True) + eps).rsqrt()


def _affine(x: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    if weight is not None:
        x = x * weight
    return x if bias is None else x + bias


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1/(1-p)`` (only in training). ``inplace`` is
    accepted for PyTorch's signature: values never alias, so the result is always a new tensor."""
    _tensor(input, "input", "dropout")
    return _dropout(input, p, training, input.shape, "dropout")


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of an (N, C, H, W) input, each with probability ``p``, and scale the rest by
    ``1/(1-p)`` (only in training). A 3-D input raises: PyTorch reads it as (N, C, L) (with a warning) where its
    documentation says (C, H, W); write ``x.unsqueeze(0)`` for one image."""
    _tensor(input, "input", "dropout2d")
    if input.ndim != 4:
        raise ShapeError(f"dropout2d: expected an (N, C, H, W) input, got shape {input.shape} (a 3-D input is "
                         "ambiguous: PyTorch takes it as (N, C, L); for one (C, H, W) image pass x.unsqueeze(0))")
    return _dropout(input, p, training, input.shape[:2] + (1, 1), "dropout2d")


def _dropout(input: Tensor, p: float, training: bool, mask_shape: tuple, op: str) -> Tensor:
    """Dropout with one keep-or-zero draw per element of ``mask_shape`` (broadcast over ``input``)."""
    p = number(p, "p (a probability)", op, minimum=0.0, maximum=1.0)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    keep = creation.rand(mask_shape, dtype=input.dtype, device=input.device) >= p
    return input * keep.to(input.dtype) * (1.0 / (1.0 - p))


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None, max_norm: float | None = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """The rows of ``weight`` (num_embeddings, embedding_dim) at the int64 indices ``input`` (any shape): shape
    ``input.shape + (embedding_dim,)``. Indices outside ``[0, num_embeddings)`` raise an IndexError (negative ones
    too, as PyTorch). Entries at ``padding_idx`` pass no gradient to that row. With ``max_norm``, the rows looked
    up whose ``norm_type``-norm exceeds it are first scaled in place to that norm, outside autograd, as PyTorch's
    (so ``weight`` must be a leaf). ``scale_grad_by_freq`` and ``sparse`` are not supported (they raise)."""
    _tensor(input, "input", "embedding"), _tensor(weight, "weight", "embedding")
    if weight.ndim != 2:
        raise ShapeError(f"embedding: weight must be (num_embeddings, embedding_dim), got shape {weight.shape}")
    _embedding_options(scale_grad_by_freq, sparse, "embedding")
    padding_idx = _padding_idx(padding_idx, weight.shape[0], "embedding")
    if max_norm is not None:
        renorm_rows(input, weight, max_norm, norm_type, "embedding")
    return _embed(input, weight, None, padding_idx, "embedding")


def _embedding_options(scale_grad_by_freq, sparse, op: str) -> None:
    for name, value in (("scale_grad_by_freq", scale_grad_by_freq), ("sparse", sparse)):
        if value not in (None, False):
            raise NotImplementedError(f"{op}: {name}={value!r} is not supported")


def renorm_rows(input: Tensor, weight: Tensor, max_norm: float, norm_type: float, op: str) -> None:
    """Scale the rows of ``weight`` that ``input`` indexes and whose norm exceeds ``max_norm`` down to it, in place
    and unrecorded (PyTorch's embedding_renorm_: ``max_norm / (norm + 1e-7)``). On the device: a mask of the rows
    hit, so a compiled step renormalises at every replay; it costs a pass over the whole table."""
    max_norm = number(max_norm, "max_norm", op, above=0.0)
    norm_type = number(norm_type, "norm_type", op, above=0.0)
    if weight._node is not None:
        raise RuntimeError(f"{op}: max_norm rescales rows of weight in place, which would cut the gradient of a "
                           "computed weight (functional_call, an adapted MAML weight): give max_norm=None and "
                           "rescale in the model, or renormalise a leaf weight")
    if input._data.dtype.kind != "i":
        raise DTypeError(f"{op}: input must hold int64 indices, got {input.dtype}")
    n = weight.shape[0]
    check_indices(input._data, input._device, 0, n, f"{op}: input (indices into num_embeddings={n} rows)")
    with no_grad():
        hit = creation.zeros(n, dtype=weight.dtype, device=weight.device).index_put((input.reshape(-1),),
                                                                                  creation.ones(1, dtype=weight.dtype,
                                                                                                device=weight.device))
        norm = weight.abs().pow(norm_type).sum(1).pow(1.0 / norm_type)
        scale = where((hit > 0) & (norm > max_norm), max_norm / (norm + 1e-7), 1.0)
        weight.mul_(scale.unsqueeze(1))


def _padding_idx(padding_idx, num_embeddings: int, op: str) -> int | None:
    """``padding_idx`` in ``[-num_embeddings, num_embeddings)`` as a row (a negative one counts from the end)."""
    if padding_idx is None:
        return None
    i = integer(padding_idx, "padding_idx", op)
    if not -num_embeddings <= i < num_embeddings:
        raise ValueError(f"{op}: padding_idx must be within num_embeddings ({num_embeddings}): in "
                         f"[{-num_embeddings}, {num_embeddings - 1}], got {i}")
    return i % num_embeddings


def _embed(input: Tensor, weight: Tensor, tasks: Tensor | None, padding_idx: int | None, op: str) -> Tensor:
    """``weight[input]``, or per task ``weight[tasks, input]`` (``tasks`` the task of each index, broadcast); rows
    read at ``padding_idx`` are cut from the graph, so that row gets no gradient."""
    if input._data.dtype.kind != "i":
        raise DTypeError(f"{op}: input must hold int64 indices, got {input.dtype}")
    n = weight.shape[-2]
    check_indices(input._data, input._device, 0, n, f"{op}: input (indices into num_embeddings={n} rows)")
    out = weight[input] if tasks is None else weight[tasks, input]
    if padding_idx is None or not out.requires_grad:
        return out
    return where((input != padding_idx).unsqueeze(-1), out, out.detach())


# -- targets and losses -----------------------------------------------------------------------------

_arange_cache: dict = {}


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """``x * Phi(x)``: with ``erf`` (``approximate='none'``, precise to a few ulp of the dtype) or the tanh
    approximation (``approximate='tanh'``)."""
    _tensor(input, "input", "gelu")
    approximate = choice(approximate, "approximate", "gelu", ("none", "tanh"))
    if approximate == "tanh":
        return 0.5 * input * (1.0 + tanh(_SQRT_2_OVER_PI * (input + 0.044715 * input * input * input)))
    return 0.5 * input * (1.0 + erf(input * _SQRT_HALF))


_SQRT_2_OVER_PI = (2.0 / math.pi) ** 0.5
_SQRT_HALF = 0.5 ** 0.5


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """``x`` where positive, else ``negative_slope * x``."""
    _tensor(input, "input", "leaky_relu")
    negative_slope = number(negative_slope, "negative_slope", "leaky_relu")
    return where(input > 0, input, input * negative_slope)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * sigmoid(x)`` (the swish)."""
    _tensor(input, "input", "silu")
    return input * sigmoid(input)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``x`` where positive, else ``alpha * expm1(x)``."""
    _tensor(input, "input", "elu")
    alpha = number(alpha, "alpha", "elu")
    positive = input > 0
    # exp of the negative part only: exp(large x) would be inf, and where's gradient would read 0 * inf = NaN
    return where(positive, input, alpha * expm1(where(positive, 0.0, input)))


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta * x)) / beta``, and ``x`` itself where ``beta * x > threshold`` (as PyTorch: the two agree
    there to float precision)."""
    _tensor(input, "input", "softplus")
    beta = number(beta, "beta", "softplus")
    threshold = number(threshold, "threshold", "softplus")
    z = input * beta
    linear_part = z > threshold
    soft = log1p(exp(where(linear_part, 0.0, z)))  # exp only below the threshold, for where's gradient
    return where(linear_part, input, soft / beta)


def softmax(input: Tensor, dim: int | None = None) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``dim``; ``dim=None`` as ``_softmax_dim`` says."""
    return _softmax(input, _softmax_dim(input, dim, "softmax"))


def log_softmax(input: Tensor, dim: int | None = None) -> Tensor:
    """``log(softmax(x))`` along ``dim``, computed stably; ``dim=None`` as ``_softmax_dim`` says."""
    return _log_softmax(input, _softmax_dim(input, dim, "log_softmax"))


def _softmax_dim(input, dim, op: str):
    """``dim``, or for ``dim=None`` PyTorch's deprecated implicit choice (dim 0 for 0-, 1- and 3-D inputs, else 1)
    with its warning where that choice is the last axis (up to 2-D); beyond, a ValueError: PyTorch would take the
    batch or channel axis where neurenix took the last one (its old default), and either silently is a bug."""
    if dim is not None:
        return dim
    _tensor(input, "input", op)
    if input.ndim > 2:
        raise ValueError(f"{op}: dim=None on a {input.ndim}-D input is ambiguous (PyTorch's deprecated implicit "
                         f"choice takes dim {0 if input.ndim == 3 else 1}, not the last); pass dim= explicitly")
    warnings.warn(f"Implicit dimension choice for {op} has been deprecated. Change the call to include dim=X as an "
                  "argument.", UserWarning, stacklevel=3)
    return 0 if input.ndim < 2 else 1


def _class_range(c: int, device) -> Tensor:
    key = (c, device)
    r = _arange_cache.get(key)
    if r is None:
        r = remember(_arange_cache, key, creation.arange(c, device=device))
        constant(r._data)  # (never changed: a compiled step may keep it)
    return r


def _check_class_indices(target: Tensor, num_classes: int, op: str) -> None:
    if target._data.dtype.kind != "i":
        raise DTypeError(f"{op}: class-index targets must be int64, got {target.dtype}")
    check_indices(target._data, target._device, 0, num_classes, f"{op}: class-index target with {num_classes} classes")


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Class indices (int64) -> one-hot rows (int64), with a new last axis of ``num_classes``."""
    _tensor(tensor, "tensor", "one_hot")
    if num_classes < 0:
        if tensor.device.type != "cpu":
            raise ValueError("one_hot: give num_classes for tensors off the host")
        num_classes = int(tensor.numpy().max()) + 1 if tensor.numel() else 0
    _check_class_indices(tensor, num_classes, "one_hot")
    return (tensor.unsqueeze(-1) == _class_range(num_classes, tensor.device)).long()


_REDUCTIONS = ("mean", "sum", "none")


def _loss_args(op: str, input, target, reduction: str, reductions: tuple = _REDUCTIONS) -> None:
    """A loss's operands are tensors and its reduction one of ``reductions`` (checked before any work)."""
    if isinstance(input, Tensor) and isinstance(target, Tensor) and type(reduction) is str and reduction in reductions:
        return
    for name, t in (("input", input), ("target", target)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    choice(reduction, "reduction", op, reductions)


def _reduce(loss: Tensor, reduction: str, op: str) -> Tensor:
    if reduction == "mean":
        return mean(loss)
    if reduction == "sum":
        return sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', not {reduction!r}")


def nll_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class indices ``target`` (N,) under log-probabilities ``input`` (N, C)."""
    _loss_args("nll_loss", input, target, reduction)
    if input.ndim < 2 or target.shape != input.shape[:1] + input.shape[2:]:
        raise ShapeError(f"nll_loss: input {input.shape} (N, C, ...) needs class-index targets of shape "
                         f"{input.shape[:1] + input.shape[2:]}, got {target.shape}")
    c = input.shape[1]
    _check_class_indices(target, c, "nll_loss")
    classes = _class_range(c, input.device).reshape((1, c) + (1,) * (input.ndim - 2))
    picked = (target.unsqueeze(1) == classes).to(input.dtype)
    return _reduce(-sum(input * picked, 1), reduction, "nll_loss")


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy of logits ``input`` (N, C, ...).

    ``target`` is either class indices (int64, shape (N, ...)) or class probabilities / one-hot rows
    (float, the shape of ``input``). ``weight`` (C,) scales each class's terms; with class indices, entries
    equal to ``ignore_index`` count for nothing, and ``"mean"`` divides by the summed weight of the
    targets counted (their number without ``weight``), as PyTorch.
    """
    if isinstance(weight, str) and reduction == "mean":  # cross_entropy(x, y, "sum"): the old positional order
        weight, reduction = None, weight
    _loss_args("cross_entropy", input, target, reduction)
    label_smoothing = number(label_smoothing, "label_smoothing", "cross_entropy", minimum=0.0, maximum=1.0)
    if input.ndim < 2:
        raise ShapeError(f"cross_entropy: expected logits of shape (N, C, ...), got {input.shape}")
    c = input.shape[1]
    w = None if weight is None else _class_weight(weight, input, "cross_entropy")
    if target.is_floating_point():
        if target.shape != input.shape:
            raise ShapeError(f"cross_entropy: probability (one-hot) targets must have the logits' shape "
                             f"{input.shape}, got {target.shape}; pass int64 class indices of shape "
                             f"{input.shape[:1] + input.shape[2:]} instead")
        probs, counted = target, None
    else:
        probs, counted = _index_targets(input, target, integer(ignore_index, "ignore_index", "cross_entropy"))
        total = counted.to(input.dtype) if w is None else sum(probs * w, 1)  # what "mean" divides by
    if label_smoothing:
        probs = probs * (1.0 - label_smoothing) + label_smoothing / c
        if counted is not None:
            probs = probs * counted.unsqueeze(1).to(input.dtype)
    if w is not None:
        probs = probs * w
    if input.ndim == 2 and not probs.requires_grad:  # the common case, fused
        loss = softmax_cross_entropy(input, probs)
    else:
        loss = -sum(probs * _log_softmax(input, 1), 1)
    if reduction != "mean" or counted is None:
        return _reduce(loss, reduction, "cross_entropy")
    return sum(loss) / sum(total)


def _class_weight(weight, input: Tensor, op: str) -> Tensor:
    _tensor(weight, "weight", op)
    c = input.shape[1]
    if weight.shape != (c,):
        raise ShapeError(f"{op}: weight must have shape ({c},), one per class, got {weight.shape}")
    return weight.to(input.dtype).reshape((1, c) + (1,) * (input.ndim - 2))


def _index_targets(input: Tensor, target: Tensor, ignore_index: int) -> tuple:
    """One-hot rows of class-index ``target`` (zero rows where it is ``ignore_index``), and the bool mask of
    the targets counted."""
    shape = input.shape[:1] + input.shape[2:]
    if target.shape != shape:
        raise ShapeError(f"cross_entropy: class-index targets must have shape {shape} for logits {input.shape}, "
                         f"got {target.shape}")
    if target._data.dtype.kind != "i":
        raise DTypeError(f"cross_entropy: class-index targets must be int64, got {target.dtype}")
    c = input.shape[1]
    counted = target != ignore_index
    _check_class_indices(where(counted, target, 0), c, "cross_entropy")
    classes = _class_range(c, input.device).reshape((1, c) + (1,) * (input.ndim - 2))
    one_hot = target.unsqueeze(1) == classes
    if 0 <= ignore_index < c:  # (else an ignored target, outside 0..c-1, matches no class: its row is zeros)
        one_hot = one_hot & counted.unsqueeze(1)
    return one_hot.to(input.dtype), counted


def _same_shape(input: Tensor, target: Tensor, op: str, reduction: str, reductions: tuple = _REDUCTIONS) -> None:
    _loss_args(op, input, target, reduction, reductions)
    if input.shape != target.shape:
        raise ShapeError(f"{op}: input of shape {input.shape} and target of shape {target.shape} differ; reshape "
                         "one of them (silent broadcasting here is almost always a bug)")


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean squared error; ``input`` and ``target`` must have one shape."""
    _same_shape(input, target, "mse_loss", reduction)
    d = input - target
    return _reduce(d * d, reduction, "mse_loss")


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean absolute error; ``input`` and ``target`` must have one shape."""
    _same_shape(input, target, "l1_loss", reduction)
    return _reduce((input - target).abs(), reduction, "l1_loss")


def smooth_l1_loss(input: Tensor, target: Tensor, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """``0.5 * d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 * beta`` (``d = input - target``);
    ``beta=0`` is ``l1_loss``, as in PyTorch."""
    _same_shape(input, target, "smooth_l1_loss", reduction)
    beta = number(beta, "beta", "smooth_l1_loss", minimum=0.0)
    d = input - target
    if beta == 0.0:  # (the quadratic part would divide by zero, and its gradient read 0 * inf)
        return _reduce(d.abs(), reduction, "smooth_l1_loss")
    return _reduce(_huber(d, beta) / beta, reduction, "smooth_l1_loss")


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """``0.5 * d**2`` where ``|d| < delta``, else ``delta * (|d| - 0.5 * delta)`` (``d = input - target``):
    ``delta`` times ``smooth_l1_loss`` with ``beta=delta``."""
    _same_shape(input, target, "huber_loss", reduction)
    delta = number(delta, "delta", "huber_loss", above=0.0)
    return _reduce(_huber(input - target, delta), reduction, "huber_loss")


def _huber(d: Tensor, delta: float) -> Tensor:
    size = d.abs()
    # the square of d itself, not of |d|: the second derivative is then 1 at d == 0 too (abs's gradient is 0 there)
    return where(size < delta, 0.5 * d * d, delta * (size - 0.5 * delta))  # (NaN: not < delta, the linear part)


def kl_div(input: Tensor, target: Tensor, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """KL divergence of ``target`` from ``input``, log-probabilities: ``target * (log(target) - input)``, where a
    target of 0 counts 0 (and its gradient is finite); ``log_target=True`` takes log-probability targets.

    ``reduction="batchmean"`` divides the sum by ``input.size(0)`` (the KL divergence per sample); ``"mean"``
    divides by the number of elements, as PyTorch does (and warns)."""
    _same_shape(input, target, "kl_div", reduction, _REDUCTIONS + ("batchmean",))
    log_target = boolean(log_target, "log_target", "kl_div")
    if log_target:
        loss = exp(target) * (target - input)
    else:
        loss = _xlogx(target) - target * input
    if reduction == "batchmean":
        return sum(loss) / input.shape[0] if input.ndim else sum(loss)
    if reduction == "mean":
        warnings.warn("kl_div: reduction='mean' divides the total loss by both the batch size and the support size; "
                      "'batchmean' divides by the batch size only, which is the KL divergence (as PyTorch warns)",
                      UserWarning, stacklevel=2)
    return _reduce(loss, reduction, "kl_div")


def _xlogx(t: Tensor) -> Tensor:
    """``t * log(t)``, 0 where ``t`` is 0 (NaN and negative values give NaN, as PyTorch's xlogy)."""
    zero = t == 0
    # log of 1 where t is 0, so that the branch where() drops has no -inf for its gradient to multiply by 0
    return where(zero, 0.0, t * log(where(zero, 1.0, t)))


_LOG_FLOOR = -100.0  # PyTorch's floor on binary_cross_entropy's logs
_FLOORED = math.exp(_LOG_FLOOR)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         reduction: str = "mean") -> Tensor:
    """``-weight * (target * log(input) + (1 - target) * log(1 - input))`` for probabilities ``input``.

    As PyTorch: each log is floored at -100 (so a probability of exactly 0 or 1 costs 100, not inf); ``input`` and
    ``target`` must lie in [0, 1] (else a ValueError: NaN too) and have one shape; ``weight`` broadcasts to
    their shape. The gradient is that of this floored loss: 0 through a floored log, and ``(input - target) /
    (input * (1 - input))`` elsewhere, whose denominator PyTorch's backward clamps at 1e-12."""
    _same_shape(input, target, "binary_cross_entropy", reduction)
    w = _elementwise_weight(weight, "weight", input, "binary_cross_entropy")
    _check_unit_interval("binary_cross_entropy", input=input, target=target)
    loss = (target - 1.0) * _floored_log(1.0 - input) - target * _floored_log(input)
    return _reduce(loss if w is None else loss * w, reduction, "binary_cross_entropy")


def _floored_log(p: Tensor) -> Tensor:
    above = p > _FLOORED
    # log of 1 below the floor: the branch where() drops must not be -inf (its gradient would read 0 * inf)
    return where(above, log(where(above, p, 1.0)), _LOG_FLOOR)


def _check_unit_interval(op: str, **tensors: Tensor) -> None:
    """A ValueError naming a tensor and one of its values outside [0, 1] (NaN included), as PyTorch checks
    probabilities. The count of values inside runs as ops; the host reads that one number (recorded, so a compiled
    step checks it at every replay)."""
    inside, size = None, 0
    for t in tensors.values():
        n = ((t >= 0) & (t <= 1)).sum()  # (NaN is neither)
        inside, size = (n if inside is None else inside + n), size + t.numel()
    buffers = tuple(t._data for t in tensors.values())  # (a tuple: a trace finds buffers in tuples and lists)
    recording.host(_raise_outside_unit, inside._data, size, tuple(tensors), buffers, inside._device, op)


def _raise_outside_unit(inside, size: int, names: tuple, buffers: tuple, device, op: str) -> None:
    if int(device.kernels.to_numpy(inside)) == size:
        return
    for name, buffer in zip(names, buffers):
        v = np.asarray(device.kernels.to_numpy(buffer)).ravel()
        bad = v[~((v >= 0) & (v <= 1))]
        if bad.size:
            raise ValueError(f"{op}: all elements of {name} should be between 0 and 1, got {bad[0]!s}")


def _elementwise_weight(weight, name: str, input: Tensor, op: str) -> Tensor | None:
    """``weight`` (None, or a tensor that broadcasts to ``input``'s shape) in ``input``'s dtype."""
    if weight is None:
        return None
    _tensor(weight, name, op)
    try:
        fits = broadcast_shapes(weight.shape, input.shape, op) == input.shape
    except ShapeError:
        fits = False
    if not fits:
        raise ShapeError(f"{op}: {name} of shape {weight.shape} must broadcast to the input's shape {input.shape}")
    return weight.to(input.dtype)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     reduction: str = "mean", pos_weight: Tensor | None = None) -> Tensor:
    """``binary_cross_entropy(sigmoid(input), target, weight)`` in one stable formula (no log is floored);
    ``pos_weight`` scales the positive term, ``target * log(sigmoid(input))``. ``weight`` and ``pos_weight``
    broadcast to the input's shape (``pos_weight`` of shape (C,): one per class on the last axis)."""
    if isinstance(weight, str) and reduction == "mean":  # f(x, y, "sum"): neurenix's earlier positional order
        weight, reduction = None, weight
    op = "binary_cross_entropy_with_logits"
    _same_shape(input, target, op, reduction)
    w = _elementwise_weight(weight, "weight", input, op)
    pw = _elementwise_weight(pos_weight, "pos_weight", input, op)
    softplus_x = softplus(input)  # -log(1 - sigmoid(x))
    if pw is None:
        loss = softplus_x - input * target
    else:  # -log(sigmoid(x)) = softplus(x) - x, weighted by pos_weight where the target is positive
        loss = (1.0 - target) * softplus_x + pw * target * (softplus_x - input)
    return _reduce(loss if w is None else loss * w, reduction, op)

