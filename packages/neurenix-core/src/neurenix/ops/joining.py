"""Joining and padding: ``cat``, ``stack``, ``pad``."""

from __future__ import annotations

from ..autograd.grad_mode import state as grad_state
from ..autograd.graph import record
from ..errors import ShapeError
from ._operands import Tensor, _wrap, device_mismatch, normalize_dim, promote_pair
from .indexing import getitem_key
from .shape import unsqueeze


def _tensor_list(tensors, op: str) -> list:
    """``tensors`` (a sequence of tensors) as a non-empty list, or a clear error."""
    if isinstance(tensors, Tensor) or not hasattr(tensors, "__iter__"):
        raise TypeError(f"{op}: expected a sequence of tensors, got {type(tensors).__name__}")
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty sequence of tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: item {i} is a {type(t).__name__}, not a Tensor")
    return tensors


def cat(tensors, dim: int = 0) -> Tensor:
    """Join tensors along an existing axis ``dim``."""
    tensors = _tensor_list(tensors, "cat")
    first = tensors[0]
    for t in tensors[1:]:
        if t._device is not first._device:
            raise device_mismatch("cat", first, t)
        if t._data.dtype is not first._data.dtype:
            return cat(_common_dtype(tensors), dim)
    d = normalize_dim(dim, first.ndim, "cat")
    for t in tensors:
        if t.ndim != first.ndim or t.shape[:d] + t.shape[d + 1:] != first.shape[:d] + first.shape[d + 1:]:
            raise ShapeError(f"cat: shapes {[tuple(u.shape) for u in tensors]} differ outside dim {d}")
    out = _wrap(first._device.kernels.cat([t._data for t in tensors], d), first._device)
    if any(t.requires_grad for t in tensors) and grad_state.enabled:
        bounds, start = [], 0
        for t in tensors:
            bounds.append((start, start + t.shape[d]))
            start += t.shape[d]

        def vjp(g, o):
            pre = (slice(None),) * d
            return tuple(getitem_key(g, pre + (slice(a, b),)) if t.requires_grad else None
                         for t, (a, b) in zip(tensors, bounds))
        record(out, "Cat", tuple(tensors), vjp, saved=())
    return out


def _common_dtype(tensors):
    a = tensors[0]
    for t in tensors[1:]:
        a, _ = promote_pair(a, t, "cat", False)
    return [t.to(a.dtype) for t in tensors]


def stack(tensors, dim: int = 0) -> Tensor:
    """Join tensors of one shape along a new axis ``dim``."""
    tensors = _tensor_list(tensors, "stack")
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ShapeError(f"stack: all tensors must have one shape, got {sorted(shapes)}")
    first = tensors[0]
    d = normalize_dim(dim, first.ndim + 1, "stack")
    if not (grad_state.enabled and any(t.requires_grad for t in tensors)) and all(
            t._device is first._device and t._data.dtype is first._data.dtype for t in tensors):
        # nothing to record (stacking data, as task batching does for every meta-batch): the kernels
        # directly, without a Tensor per unsqueezed input (100 of them for 25 tasks: 0.3 ms a meta-batch)
        k, shape = first._device.kernels, first.shape[:d] + (1,) + first.shape[d:]
        if d == 0 and first.ndim:  # one cat along the first axis, one reshape (not a reshape per input)
            return _wrap(k.reshape(k.cat([t._data for t in tensors], 0), (len(tensors), *first.shape)), first._device)
        return _wrap(k.cat([k.reshape(t._data, shape) for t in tensors], d), first._device)
    return cat([unsqueeze(t, d) for t in tensors], d)


def pad(x: Tensor, pads, value: float = 0.0) -> Tensor:
    """Constant padding; ``pads`` is ``((before, after), ...)`` for every axis."""
    pads = tuple((int(a), int(b)) for a, b in pads)
    if len(pads) != x.ndim or any(a < 0 or b < 0 for a, b in pads):
        raise ValueError(f"pad: need one non-negative (before, after) pair per axis of shape {x.shape}, got {pads}")
    out = _wrap(x._device.kernels.pad(x._data, pads, value), x._device)
    if x.requires_grad and grad_state.enabled:
        key = tuple(slice(a, a + n) for (a, _), n in zip(pads, x.shape))
        record(out, "Pad", (x,), lambda g, o: (getitem_key(g, key),), saved=())
    return out
