"""Stateless layer functions and losses, as ``torch.nn.functional`` names them."""

from __future__ import annotations

import math
import warnings

from .. import creation
from ..arguments import choice, integer, number
from ..autograd.grad_mode import no_grad
from ..caches import constant, remember
from ..errors import DTypeError, ShapeError
from ..ops import (
    erf,
    exp,
    fold,
    linear,
    log,
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
from ..ops.batch_norm import batch_norm_relu_pool_train, batch_norm_train
from ..ops.bounds import check as check_indices
from ..ops.conv import conv2d as _conv2d
from ..ops.joining import pad as _pad_axes
from ..ops.linalg import _same_kind
from ..ops.window import check_output, pair
from ..ops.window import max_pool2d as _max_pool2d
from ..tensor import Tensor
from .resampling import adaptive_avg_pool2d, interpolate
from .similarity import cosine_similarity, normalize, pairwise_distance

unfold, fold = (tensor_first(f) for f in (unfold, fold))  # (the other ops name a non-tensor themselves)

__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool2d",
    "batch_norm",
    "binary_cross_entropy_with_logits",
    "conv2d",
    "cosine_similarity",
    "cross_entropy",
    "dropout",
    "fold",
    "gelu",
    "interpolate",
    "l1_loss",
    "leaky_relu",
    "linear",
    "log_softmax",
    "logsumexp",
    "max_pool2d",
    "mse_loss",
    "nll_loss",
    "normalize",
    "one_hot",
    "pad",
    "pairwise_distance",
    "relu",
    "sigmoid",
    "softmax",
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
    _tensor(input, "input", "conv2d"), _tensor(weight, "weight", "conv2d")
    if bias is not None:
        _tensor(bias, "bias", "conv2d")
    per_task = weight.ndim == 5
    if input.ndim != 4 or weight.ndim not in (4, 5):
        raise ShapeError(f"conv2d: expected input (N, C, H, W) and weight (O, C/groups, kh, kw), got {input.shape} "
                         f"and {weight.shape}")
    groups = integer(groups, "groups", "conv2d", minimum=1)
    n, c, h, w = input.shape
    t = weight.shape[0] if per_task else 1
    o, cg, kh, kw = weight.shape[-4:]
    if kh < 1 or kw < 1:
        raise ShapeError(f"conv2d: weight {weight.shape} has an empty kernel ({kh}x{kw}); kernels need at least 1x1")
    if c % groups or o % groups or cg != c // groups:
        raise ShapeError(f"conv2d: input with {c} channels does not fit weight {weight.shape} with groups={groups}")
    if t == 0 or n % t:
        raise ShapeError(f"conv2d: {n} input rows do not split into the {t} tasks of weight {weight.shape}")
    if bias is not None and tuple(bias.shape) != tuple(weight.shape[:-3]):
        raise ShapeError(f"conv2d: bias of shape {bias.shape} does not fit weight {weight.shape} (expected "
                         f"{tuple(weight.shape[:-3])})")
    st, pd, dl = (pair(v, name, "conv2d") for v, name in ((stride, "stride"), (padding, "padding"),
                                                           (dilation, "dilation")))
    check_output((h, w), (kh, kw), st, pd, dl, "conv2d")
    operands = _same_kind("conv2d", input, weight, *(() if bias is None else (bias,)))
    if operands[0].dtype.is_floating_point is False:
        raise DTypeError(f"conv2d: takes float32 or float64 tensors, got {operands[0].dtype} (cast with .float())")
    return _conv2d(*operands[:2], operands[2] if bias is not None else None, st, pd, dl, groups)


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


def dropout(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1/(1-p)`` (only in training)."""
    _tensor(input, "input", "dropout")
    p = number(p, "p (a probability)", "dropout", minimum=0.0, maximum=1.0)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    keep = creation.rand(input.shape, dtype=input.dtype, device=input.device) >= p
    return input * keep.to(input.dtype) * (1.0 / (1.0 - p))


# -- targets and losses -----------------------------------------------------------------------------

_arange_cache: dict = {}


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """``x * Phi(x)``: with the exact ``erf`` (``approximate='none'``; erf is a composition accurate to about
    1e-7, see ``neurenix.erf``) or the tanh approximation (``approximate='tanh'``)."""
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


def _loss_args(op: str, input, target, reduction: str) -> None:
    """A loss's operands are tensors and its reduction one of PyTorch's (checked before any work)."""
    if isinstance(input, Tensor) and isinstance(target, Tensor) and type(reduction) is str and reduction in _REDUCTIONS:
        return
    for name, t in (("input", input), ("target", target)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    choice(reduction, "reduction", op, _REDUCTIONS)


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


def _same_shape(input: Tensor, target: Tensor, op: str, reduction: str) -> None:
    _loss_args(op, input, target, reduction)
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


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Sigmoid + binary cross-entropy in one stable formula."""
    _same_shape(input, target, "binary_cross_entropy_with_logits", reduction)
    loss = relu(input) - input * target + log(1 + exp(-input.abs()))
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")
