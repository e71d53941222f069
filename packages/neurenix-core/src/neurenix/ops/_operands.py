"""Bringing operands together: scalars, dtype promotion, device and broadcast checks.

This is the per-op hot path, so the common case (two tensors of one dtype and device and shape, or
a tensor and a Python number) takes a few comparisons and nothing else.
"""

from __future__ import annotations

import builtins
import functools

import numpy as np

from .. import dtypes as _dt
from ..arguments import integer
from ..autograd.grad_mode import state as grad_state
from ..autograd.graph import record
from ..caches import remember
from ..errors import DeviceError, ShapeError
from ..tensor import Tensor, _wrap

_F32 = _dt.float32.np
_PY_SCALARS = (float, int, bool)


def as_scalar(v):
    """``v`` as a Python number if it is one (NumPy scalars included), else None."""
    t = type(v)
    if t is float or t is int or t is bool:
        return v
    if isinstance(v, np.generic) and v.dtype.kind in "biuf":
        return v.item()
    return None


def as_tensor_like(v, like: Tensor) -> Tensor:
    """A non-scalar operand (list, ndarray) as a tensor on ``like``'s device."""
    if isinstance(v, Tensor):
        return v
    if isinstance(v, (list, tuple, np.ndarray)):
        return Tensor(v, device=like._device)
    raise TypeError(f"unsupported operand type {type(v).__name__} for a tensor op")


def not_a_tensor(op: str, x) -> TypeError:
    """The error for a non-tensor where op ``op`` takes a tensor. Ops raise it from an ``except
    AttributeError`` around their first use of the operand: a check that costs nothing when it passes."""
    return TypeError(f"{op}: expected a Tensor, got {type(x).__name__} {x!r:.40}; make one with neurenix.tensor(...)")


def expect_tensor(value, name: str, op: str):
    """``value`` if it is a Tensor, else a TypeError naming ``op`` and ``name``."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(value).__name__} {value!r:.40}")
    return value


def tensor_first(fn):
    """``fn``, an op whose first argument is a tensor, as the functional API offers it (``neurenix.gather``):
    anything else there is a TypeError naming the op. (The hot ops say it themselves, see ``not_a_tensor``.)"""
    name = fn.__name__

    @functools.wraps(fn)
    def checked(x, *args, **kwargs):
        if not isinstance(x, Tensor):
            raise not_a_tensor(name, x)
        return fn(x, *args, **kwargs)
    return checked


def device_mismatch(op: str, a: Tensor, b: Tensor) -> DeviceError:
    return DeviceError(f"{op}: operands are on different devices, {a._device} and {b._device}; "
                       "move one with .to(device)")


_broadcast_cache: dict = {}


def broadcast_shapes(sa: tuple, sb: tuple, op: str) -> tuple:
    """NumPy's broadcast of two shapes, or a ShapeError naming the op and both shapes."""
    key = (sa, sb)
    out = _broadcast_cache.get(key)
    if out is None:
        n = max(len(sa), len(sb))
        pa, pb = (1,) * (n - len(sa)) + sa, (1,) * (n - len(sb)) + sb
        if any(x != y and x != 1 and y != 1 for x, y in zip(pa, pb)):
            raise ShapeError(f"{op}: shapes {sa} and {sb} cannot be broadcast together")
        out = remember(_broadcast_cache, key, tuple(y if x == 1 else x for x, y in zip(pa, pb)))
    return out


def cast(x: Tensor, dtype) -> Tensor:
    """``x`` converted to ``dtype`` (``x`` itself if it has that dtype already); differentiable between floats.
    (Here, with promotion, which needs it; elementwise.py exports it.)"""
    npd = _dt.as_dtype(dtype).np
    if x._data.dtype is npd:
        return x
    out = _wrap(x._device.kernels.cast(x._data, npd), x._device)
    if npd.kind == "f" and x.requires_grad and grad_state.enabled:
        src = x.dtype
        record(out, "Cast", (x,), lambda g, o: (cast(g, src),), saved=())
    return out


def cast_to(t: Tensor, npd) -> Tensor:
    return cast(t, _dt.BY_NUMPY[npd])


def promote_pair(a: Tensor, b: Tensor, op: str, floating: bool):
    """Cast two tensors to their common dtype (a float one if ``floating``)."""
    npd = _dt.PROMOTE[(a._data.dtype, b._data.dtype)]
    if floating and npd.kind != "f":
        npd = _F32
    if a._data.dtype is not npd:
        a = cast_to(a, npd)
    if b._data.dtype is not npd:
        b = cast_to(b, npd)
    return a, b


def promote_scalar(t: Tensor, s, floating: bool) -> Tensor:
    npd = t._data.dtype
    if npd.kind == "f":
        return t
    if type(s) is int and not -2 ** 63 <= s < 2 ** 63:
        raise ValueError(f"the number {s} does not fit the int64 operand it meets (it would overflow)")
    if npd is _dt._I8 and type(s) is int and not -128 <= s < 128:  # NEP 50 refuses it too
        raise ValueError(f"the number {s} does not fit the int8 operand it meets (it would overflow); cast the "
                         "tensor to int64 first")
    npd = _dt.SCALAR_PROMOTE[(npd, type(s))]
    if floating and npd.kind != "f":
        npd = _F32
    return t if npd is t._data.dtype else cast_to(t, npd)


def prepare(a, b, op: str, floating: bool = False):
    """Operands of a binary op -> ``(a, b, x, y, device)``.

    ``a``/``b`` come back as tensors of one dtype (or one of them a Python number), ``x``/``y`` as
    what the kernel takes (their buffers, or the number).
    """
    if isinstance(a, Tensor):
        if isinstance(b, Tensor):
            dev = a._device
            if b._device is not dev:
                raise device_mismatch(op, a, b)
            if a._data.dtype is not b._data.dtype or (floating and a._data.dtype.kind != "f"):
                a, b = promote_pair(a, b, op, floating)
            if a._data.shape != b._data.shape:
                broadcast_shapes(a._data.shape, b._data.shape, op)
            return a, b, a._data, b._data, dev
        s = as_scalar(b)
        if s is None:
            return prepare(a, as_tensor_like(b, a), op, floating)
        a = promote_scalar(a, s, floating)
        return a, s, a._data, s, a._device
    if isinstance(b, Tensor):
        s = as_scalar(a)
        if s is None:
            return prepare(as_tensor_like(a, b), b, op, floating)
        b = promote_scalar(b, s, floating)
        return s, b, s, b._data, b._device
    raise TypeError(f"{op}: at least one operand must be a Tensor, got {type(a).__name__} and {type(b).__name__}")


def needs_grad(a, b) -> bool:
    """Whether an op on operands ``a`` and ``b`` (tensors or numbers) must be recorded."""
    if not grad_state.enabled:
        return False
    return (isinstance(a, Tensor) and a.requires_grad) or (isinstance(b, Tensor) and b.requires_grad)


_sum_to_cache: dict = {}


def sum_to(g: Tensor, shape: tuple) -> Tensor:
    """Sum a broadcast gradient back down to ``shape`` (the inverse of broadcasting)."""
    gs = g._data.shape
    if gs == shape:
        return g
    plan = _sum_to_cache.get((gs, shape))
    if plan is None:
        lead = len(gs) - len(shape)
        ones = tuple(i + lead for i, s in enumerate(shape) if s == 1 and gs[i + lead] != 1)
        # one reduction: drop the leading axes, keep the size-1 ones; reshape only if both occur
        plan = remember(_sum_to_cache, (gs, shape), (tuple(range(lead)) + ones, bool(ones), bool(ones) and lead > 0))
    axes, keepdim, reshape_after = plan
    g = g.sum(dim=axes, keepdim=keepdim)
    return g.reshape(shape) if reshape_after else g


# -- dims and axes --------------------------------------------------------------------------------------

def normalize_dim(dim: int, ndim: int, op: str) -> int:
    """A possibly negative dim as an index in ``range(ndim)``, or an IndexError naming the op."""
    if type(dim) is not int:
        dim = integer(dim, "dim", op)
    if not -ndim <= dim < builtins.max(ndim, 1):
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dimension(s)")
    return dim % ndim if ndim else 0


_axes_cache: dict = {}


def normalize_axes(dim, ndim: int, op: str) -> tuple:
    """``dim`` (None, an int or a sequence of ints) as a sorted tuple of axes; None means all."""
    key = (dim if type(dim) is not list else tuple(dim), ndim)
    try:
        axes = _axes_cache.get(key)
    except TypeError:  # unhashable: not a valid dim, which _axes says
        axes = None
    if axes is None:
        axes = _axes(dim, ndim, op)
        remember(_axes_cache, key, axes)
    return axes


def _axes(dim, ndim: int, op: str) -> tuple:
    if dim is None:
        return tuple(range(ndim))
    dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
    axes = tuple(sorted({normalize_dim(d, ndim, op) for d in dims}))
    if len(axes) != len(dims):
        raise ValueError(f"{op}: dim {dim} repeats an axis")
    return axes if ndim else ()


_ALL: dict = {}


def _all_axes(ndim: int) -> tuple:
    axes = _ALL.get(ndim)
    if axes is None:
        axes = remember(_ALL, ndim, tuple(range(ndim)))
    return axes


__all__ = ["Tensor", "_wrap", "as_scalar", "broadcast_shapes", "needs_grad", "prepare", "sum_to"]
