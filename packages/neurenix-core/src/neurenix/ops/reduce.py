"""Reductions over axes (sum, mean, prod, max, argmax, var...) and the softmax family."""

from __future__ import annotations

import builtins
from collections import namedtuple

from .. import dtypes as _dt
from ..arguments import boolean
from ..autograd.grad_mode import state as grad_state
from ..autograd.graph import record
from ..errors import DTypeError
from ._operands import Tensor, _all_axes, _wrap, normalize_axes, normalize_dim, not_a_tensor
from .elementwise import cast, exp, log, sqrt
from .joining import cat
from .shape import not_a_view

values_indices = namedtuple("values_indices", ["values", "indices"])


def _expand_back(g: Tensor, shape: tuple, axes: tuple, keepdim: bool) -> Tensor:
    """Broadcast a reduced gradient back over the reduced axes."""
    if not keepdim:
        g = g.reshape(tuple(1 if i in axes else s for i, s in enumerate(shape)))
    return g.expand(shape)


def _float(x: Tensor, op: str) -> Tensor:
    try:
        kind = x._data.dtype.kind
    except AttributeError:
        raise not_a_tensor(op, x) from None
    if kind == "f":
        return x
    if kind == "b" and op != "mean":
        raise DTypeError(f"{op}: not defined for bool tensors (it takes float32, float64 or int64: cast with .float() "
                         "or .long())")
    return cast(x, _dt.default_float)


def sum(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001 - PyTorch's name
    """Sum over ``dim`` (all axes if None). Bool and int64 sums are int64."""
    if keepdim is not False and keepdim is not True:
        keepdim = boolean(keepdim, "keepdim", "sum")
    try:
        nd = len(x._data.shape)
    except AttributeError:
        raise not_a_tensor("sum", x) from None
    axes = normalize_axes(dim, nd, "sum") if dim is not None else _all_axes(nd)
    out = _wrap(x._device.kernels.sum(x._data, axes, keepdim), x._device)
    if x.requires_grad and grad_state.enabled:
        shape = x.shape
        record(out, "Sum", (x,), lambda g, o: (_expand_back(g, shape, axes, keepdim),), saved=())
    return out


def mean(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Mean over ``dim`` (all axes if None); integer inputs give the default float dtype (float32 unless
    ``set_default_dtype`` changed it)."""
    if keepdim is not False and keepdim is not True:
        keepdim = boolean(keepdim, "keepdim", "mean")
    x = _float(x, "mean")
    axes = normalize_axes(dim, len(x._data.shape), "mean")
    out = _wrap(x._device.kernels.mean(x._data, axes, keepdim), x._device)
    if x.requires_grad and grad_state.enabled:
        shape = x.shape
        n = 1
        for a in axes:
            n *= shape[a]
        record(out, "Mean", (x,), lambda g, o: (_expand_back(g / n, shape, axes, keepdim),), saved=())
    return out


def accumulated(x: Tensor, dtype=None) -> Tensor:
    """``x`` in the dtype its running sums and products are taken in: ``dtype`` if given, else int64 for bool
    and int8 inputs (as PyTorch), else its own."""
    if dtype is not None:
        return cast(x, _dt.as_dtype(dtype))
    return cast(x, _dt.int64) if x._data.dtype.kind in "bi" else x


def prod(x: Tensor, dim: int | None = None, keepdim: bool = False, dtype=None) -> Tensor:
    """Product over ``dim`` (of all entries if None); bool and integer inputs give int64, ``dtype`` casts the
    input first. Taken by pairwise products, never dividing: gradients of any order are exact at zeros too."""
    keepdim = boolean(keepdim, "keepdim", "prod")
    try:
        nd = len(x._data.shape)
    except AttributeError:
        raise not_a_tensor("prod", x) from None
    x = accumulated(x, dtype)
    axes = _all_axes(nd) if dim is None else (normalize_dim(dim, nd, "prod"),)
    for axis in reversed(axes if nd else ()):
        x = _prod_along(x, axis, keepdim)
    return x if nd else x * 1  # a new tensor, never the input itself


def _prod_along(x: Tensor, axis: int, keepdim: bool) -> Tensor:
    """The product along ``axis``: ceil(log2 n) rounds, each multiplying the axis' first half by its second
    (an odd entry carried to the next round), so O(n) work and every step a differentiable product."""
    n, lead = x.shape[axis], (slice(None),) * axis
    if n == 0:
        return sum(x, axis, keepdim) + 1  # the empty product, still a function of x for autograd
    while n > 2:
        h = n // 2
        pairs = x[lead + (slice(0, h),)] * x[lead + (slice(h, 2 * h),)]
        x = cat([pairs, x[lead + (slice(2 * h, n),)]], axis) if n % 2 else pairs
        n -= h
    first, second = (slice(0, 1), slice(1, 2)) if keepdim else (0, 1)
    return x[lead + (first,)] * (x[lead + (second,)] if n == 2 else 1)


def _nonempty(x: Tensor, axes: tuple, op: str) -> None:
    """A max/min/argmax over ``axes`` needs at least one element along them (other axes may be empty)."""
    shape = x._data.shape
    if 0 in shape and builtins.any(shape[a] == 0 for a in axes):
        raise ValueError(f"{op}: cannot reduce over a zero-size axis (shape {x.shape}, dims {axes})")


def _extremum(kernel: str, name: str):
    def op(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
        if keepdim is not False and keepdim is not True:
            keepdim = boolean(keepdim, "keepdim", kernel)
        try:
            axes = normalize_axes(dim, len(x._data.shape), kernel)
        except AttributeError:
            raise not_a_tensor(kernel, x) from None
        _nonempty(x, axes, kernel)
        out = _wrap(getattr(x._device.kernels, kernel)(x._data, axes, keepdim), x._device)
        if x.requires_grad and grad_state.enabled:
            shape = x.shape

            def vjp(g, o):
                # ties share the gradient equally
                hit = (x == _expand_back(o, shape, axes, keepdim)).to(x.dtype)
                return (_expand_back(g, shape, axes, keepdim) * hit / hit.sum(dim=axes, keepdim=True),)
            record(out, name, (x,), vjp, needs_output=True)
        return out

    op.__name__ = op.__qualname__ = "a" + kernel
    op.__doc__ = f"The {kernel}imum over ``dim`` (all axes if None); ties share the gradient."
    return op


amax = _extremum("max", "Amax")
amin = _extremum("min", "Amin")


def _arg(kernel: str):
    def op(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
        if keepdim is not False and keepdim is not True:
            keepdim = boolean(keepdim, "keepdim", kernel)
        try:
            k = x._device.kernels
        except AttributeError:
            raise not_a_tensor(kernel, x) from None
        _nonempty(x, _all_axes(x.ndim) if dim is None else (normalize_dim(dim, x.ndim, kernel),), kernel)
        if dim is None:
            flat = k.reshape(x._data, (x.numel(),))
            idx = getattr(k, kernel)(flat, 0, False)
            if keepdim:
                idx = k.reshape(idx, (1,) * x.ndim)
            return _wrap(idx, x._device)
        axis = normalize_dim(dim, x.ndim, kernel)
        return _wrap(getattr(k, kernel)(x._data, axis, keepdim), x._device)

    op.__name__ = op.__qualname__ = kernel
    op.__doc__ = f"Indices (int64) of the {kernel[3:]}imum along ``dim`` (of the flattened tensor if None)."
    return op


argmax = _arg("argmax")
argmin = _arg("argmin")


def max(x: Tensor, dim=None, keepdim: bool = False):  # noqa: A001
    """``max(x)``: the largest value; ``max(x, dim)``: (values, indices); ``max(x, other)``: maximum."""
    if isinstance(dim, Tensor):
        return x.maximum(dim)
    if dim is None:
        return amax(x)
    return values_indices(amax(x, dim, keepdim), argmax(x, dim, keepdim))


def min(x: Tensor, dim=None, keepdim: bool = False):  # noqa: A001
    """``min(x)``: the smallest value; ``min(x, dim)``: (values, indices); ``min(x, other)``: minimum."""
    if isinstance(dim, Tensor):
        return x.minimum(dim)
    if dim is None:
        return amin(x)
    return values_indices(amin(x, dim, keepdim), argmin(x, dim, keepdim))


def var(x: Tensor, dim=None, unbiased: bool | None = None, keepdim: bool = False, correction: int | None = None):
    """Variance over ``dim``; ``correction=1`` (the default, Bessel's) divides by ``n - 1``."""
    if unbiased is not None and correction is not None:
        raise ValueError("var: give unbiased or correction, not both")
    corr = correction if correction is not None else (1 if unbiased is None or unbiased else 0)
    x = _float(x, "var")
    axes = normalize_axes(dim, x.ndim, "var")
    n = 1
    for a in axes:
        n *= x.shape[a]
    d = x - mean(x, axes, keepdim=True)
    return sum(d * d, axes, keepdim) / builtins.max(n - corr, 0)


def std(x: Tensor, dim=None, unbiased: bool | None = None, keepdim: bool = False, correction: int | None = None):
    """Standard deviation: ``sqrt(var(...))``."""
    return sqrt(var(x, dim, unbiased, keepdim, correction))


def logsumexp(x: Tensor, dim, keepdim: bool = False) -> Tensor:
    """``log(sum(exp(x), dim))``, computed without overflow."""
    x = _float(x, "logsumexp")
    axes = normalize_axes(dim, x.ndim, "logsumexp")
    if x.numel() == 0:  # log(0) = -inf over empty axes, as in PyTorch; empty where other axes are
        return log(sum(exp(x), axes, keepdim))
    m = amax(x.detach(), axes, keepdim=True)  # any shift gives the same value and gradient
    out = log(sum(exp(x - m), axes, keepdim=True)) + m
    return out if keepdim else not_a_view(out.reshape(tuple(s for i, s in enumerate(x.shape) if i not in axes)))


def softmax(x: Tensor, dim: int) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``dim``."""
    x = _float(x, "softmax")
    axis = normalize_dim(dim, x.ndim, "softmax")
    if x.ndim == 0:  # as PyTorch, a 0-d tensor is one row of one element (kernels take an axis that exists)
        return softmax(x.reshape(1), 0).reshape(())
    if x.numel() == 0:
        return x * 1.0  # nothing to normalise (kernels need not handle empty rows)
    out = _wrap(x._device.kernels.softmax(x._data, axis), x._device)
    if x.requires_grad and grad_state.enabled:
        record(out, "Softmax", (x,), lambda g, o: (
            o * (g - sum(g * o, axis, keepdim=True)) if grad_state.enabled else  # differentiable, or fused:
            _wrap(g._device.kernels.softmax_backward(g._data, o._data, axis), g._device),), needs_output=True,
               saved=())
    return out


def log_softmax(x: Tensor, dim: int) -> Tensor:
    """``log(softmax(x))`` along ``dim``, computed stably."""
    x = _float(x, "log_softmax")
    axis = normalize_dim(dim, x.ndim, "log_softmax")
    if x.ndim == 0:  # as PyTorch, a 0-d tensor is one row of one element (kernels take an axis that exists)
        return log_softmax(x.reshape(1), 0).reshape(())
    if x.numel() == 0:
        return x * 1.0
    out = _wrap(x._device.kernels.log_softmax(x._data, axis), x._device)
    if x.requires_grad and grad_state.enabled:
        record(out, "LogSoftmax", (x,), lambda g, o: (
            g - exp(o) * sum(g, axis, keepdim=True) if grad_state.enabled else
            _wrap(g._device.kernels.log_softmax_backward(g._data, o._data, axis), g._device),), needs_output=True,
               saved=())
    return out


def softmax_cross_entropy(x: Tensor, probs: Tensor) -> Tensor:
    """Per row of logits ``x`` (N, C): ``-sum(probs * log_softmax(x, 1), 1)``, fused (one kernel forward,
    one backward). ``probs`` (N, C) is a constant target distribution (one-hot rows for class labels)."""
    k = x._device.kernels
    loss, sm = k.cross_entropy(x._data, probs._data)
    out = _wrap(loss, x._device)
    if x.requires_grad and grad_state.enabled:
        record(out, "CrossEntropy", (x,), lambda g, o: (
            g.unsqueeze(1) * (softmax(x, 1) * sum(probs, 1, keepdim=True) - probs) if grad_state.enabled else
            _wrap(k.cross_entropy_backward(g._data, sm, probs._data), x._device),), saved=(x, probs))
    return out


def any(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """Whether any element along ``dim`` is nonzero (a bool tensor)."""
    return sum(x != 0, dim, keepdim) > 0


def all(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """Whether every element along ``dim`` is nonzero (a bool tensor)."""
    return sum(x == 0, dim, keepdim) == 0
