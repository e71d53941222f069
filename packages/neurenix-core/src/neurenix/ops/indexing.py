"""Indexing: ``x[key]``, ``x[key] = v`` and ``index_put`` (beside it, its adjoint), and ``gather``."""

from __future__ import annotations

import numpy as np

from ..autograd.grad_mode import state as grad_state
from ..autograd.graph import record
from ..errors import DeviceError, ShapeError
from ..tensor import mark_view, tensor
from ._operands import Tensor, _wrap, broadcast_shapes, device_mismatch, normalize_dim, sum_to
from .bounds import check as check_indices
from .shape import not_a_view, unsqueeze


def normalize_key(x: Tensor, key) -> tuple:
    """An index as the kernel key: ints made non-negative and bounds-checked, Ellipsis expanded,
    bool masks turned into int64 index buffers, lists and arrays into index buffers on x's device."""
    if not isinstance(key, tuple):
        key = (key,)
    shape, dev = x._data.shape, x._device
    items = []
    for k in key:
        if isinstance(k, (list, np.ndarray)):
            k = Tensor(k, device=dev)
        elif isinstance(k, np.integer):
            k = int(k)
        elif isinstance(k, Tensor) and k.ndim == 0 and k._data.dtype.kind == "i":
            k = int(k.item()) if k._device is dev else k
        items.append(k)
    if sum(k is Ellipsis for k in items) > 1:
        raise IndexError(f"an index can have only one ellipsis (...), got {key}")
    used = 0
    for k in items:
        if isinstance(k, Tensor) and k._data.dtype.kind == "b":
            used += k.ndim
        elif k is not None and k is not Ellipsis:
            used += 1
    if used > len(shape):
        raise IndexError(f"too many indices ({used}) for a tensor of shape {shape}")
    out, axis = [], 0
    for k in items:
        if k is Ellipsis:
            out.extend([slice(None)] * (len(shape) - used))
            axis += len(shape) - used
            used = len(shape)
        elif k is None:
            out.append(None)
        elif isinstance(k, bool):
            raise IndexError("indexing with a Python bool is not supported; use a bool tensor mask")
        elif isinstance(k, int):
            n = shape[axis]
            if not -n <= k < n:
                raise IndexError(f"index {k} is out of bounds for axis {axis} of size {n} (shape {shape})")
            out.append(k % n)
            axis += 1
        elif isinstance(k, slice):
            out.append(k)
            axis += 1
        elif isinstance(k, Tensor):
            if k._device is not dev:
                raise DeviceError(f"indexing a tensor on {dev} with an index tensor on {k._device}")
            kind = k._data.dtype.kind
            if kind == "b":
                if k.ndim == 0:
                    raise IndexError("a 0-d bool index is supported on its own (x[mask], x[mask] = v), not among other "
                                     "indices: write x.unsqueeze(axis) instead")
                if k.shape != shape[axis:axis + k.ndim]:
                    raise IndexError(f"bool mask of shape {k.shape} does not match axes {axis}.. of shape {shape}")
                out.extend(mask_indices(k))
                axis += k.ndim
            elif kind == "i":
                check_indices(k._data, dev, -shape[axis], shape[axis], f"indexing axis {axis} of size {shape[axis]}")
                out.append(k._data)
                axis += 1
            else:
                raise IndexError(f"index tensors must be int64 or bool, got {k.dtype}")
        else:
            raise IndexError(f"unsupported index {k!r} of type {type(k).__name__}")
    return tuple(out)


def mask_indices(mask: Tensor) -> list:
    """Index buffers (int64, one per dim, on ``mask``'s device) of the True entries of the bool tensor ``mask``,
    in row-major order. The mask is read on the host: how many there are depends on its values."""
    dev = mask._device
    return [dev.kernels.from_numpy(nz.astype(np.int64), dev.index) for nz in np.nonzero(mask.numpy())]


_BASIC = (int, slice, type(None))


def _scalar_mask(key) -> bool | None:
    """The value of a 0-d bool tensor ``key`` (PyTorch's ``x[True]``: a new leading axis of length 1 or 0)."""
    if isinstance(key, Tensor) and key.ndim == 0 and key._data.dtype.kind == "b":
        return bool(key.item())
    return None


def getitem(x: Tensor, key) -> Tensor:
    """``x[key]`` with NumPy's basic and advanced (integer-array, bool-mask) indexing."""
    whole = _scalar_mask(key)
    if whole is not None:  # a copy, as other masks give
        return not_a_view(getitem(unsqueeze(x, 0), slice(0, int(whole))))
    checks = x._device.checks
    mark = len(checks)
    key = normalize_key(x, key)
    try:
        out = getitem_key(x, key)
    except IndexError:  # the kernel checked the indices itself: what was queued would report it twice
        del checks[mark:]
        raise
    for k in key:
        if type(k) not in _BASIC:
            return out  # advanced indexing makes a copy, as in PyTorch: it may be changed in place
    mark_view(out, x)  # basic indexing makes a view
    return out


def _scatter(x: Tensor, key: tuple, g: Tensor) -> Tensor:
    """Zeros shaped like ``x`` with ``g`` added at ``key``: the adjoint of indexing."""
    return _index_put(_zeros(g, x.shape), key, g, True)


def _index_put(x: Tensor, key: tuple, values: Tensor, accumulate: bool) -> Tensor:
    k = x._device.kernels
    target = k.getitem(x._data, key).shape
    if values.shape != target and broadcast_shapes(values.shape, target, "index_put") != target:
        raise ShapeError(f"index_put: values of shape {values.shape} do not fit x[key] of shape {target}")
    out = _wrap(k.index_put(x._data, key, values._data, accumulate), x._device)
    if (x.requires_grad or values.requires_grad) and grad_state.enabled:
        def vjp(g, o):
            gx = None
            if x.requires_grad:
                gx = g if accumulate else _index_put(g, key, _zeros(g, target), False)
            gv = sum_to(getitem_key(g, key), values.shape) if values.requires_grad else None
            return gx, gv
        record(out, "IndexPut", (x, values), vjp, saved=())
    return out


def _zeros(like: Tensor, shape: tuple) -> Tensor:
    dev = like._device
    return _wrap(dev.kernels.full(shape, 0, like._data.dtype, dev.index), dev)


def getitem_key(x: Tensor, key: tuple) -> Tensor:
    """``x[key]`` for a key already normalized (used by vjps, where the key is known good)."""
    out = _wrap(x._device.kernels.getitem(x._data, key), x._device)
    if x.requires_grad and grad_state.enabled:
        record(out, "Index", (x,), lambda g, o: (_scatter(x, key, g),), saved=())
    return out


def index_put(x: Tensor, key, values, accumulate: bool = False) -> Tensor:
    """A copy of ``x`` with ``x[key] = values`` (or ``+=`` when ``accumulate``; repeated indices add up)."""
    whole = _scalar_mask(key)
    if whole is not None:  # every entry, or none
        key = Ellipsis if whole else slice(0, 0)
    checks = x._device.checks
    mark = len(checks)
    key = normalize_key(x, key)
    if not isinstance(values, Tensor):
        values = tensor(values, dtype=x.dtype, device=x._device)
    elif values._device is not x._device:
        raise device_mismatch("index_put", x, values)
    if values._data.dtype is not x._data.dtype:
        values = values.to(x.dtype)
    try:
        return _index_put(x, key, values, accumulate)
    except IndexError:  # reported by the kernel itself (see getitem)
        del checks[mark:]
        raise


def along_key(index: Tensor, d: int, device) -> tuple:
    """The advanced-indexing key that reads ``x[i][index[i][j]][k]`` for every position of ``index`` (``index``
    along dim ``d``, aranges along the others): what gather reads and scatter writes."""
    key = []
    for axis, n in enumerate(index.shape):
        if axis == d:
            key.append(index)
        else:
            shape = [1] * index.ndim
            shape[axis] = n
            key.append(Tensor(np.arange(n).reshape(shape), device=device))
    return tuple(key)


def gather(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """``out[i][j] = x[i][index[i][j]]`` along ``dim`` (PyTorch's gather), via integer-array indexing."""
    d = normalize_dim(dim, x.ndim, "gather")
    if not isinstance(index, Tensor) or index._data.dtype.kind != "i":
        raise IndexError(f"gather: index must be an int64 tensor, got {getattr(index, 'dtype', type(index).__name__)}")
    if index.ndim != x.ndim:
        raise ShapeError(f"gather: index of shape {index.shape} must have as many dims as x {x.shape}")
    if any(n > x.shape[a] for a, n in enumerate(index.shape) if a != d):
        raise ShapeError(f"gather: index of shape {index.shape} is larger than x {x.shape} outside dim {d}")
    if index._device is not x._device:
        raise device_mismatch("gather", x, index)
    checks = x._device.checks
    mark = len(checks)
    check_indices(index._data, x._device, 0, x.shape[d], f"gather along dim {d} of size {x.shape[d]}")
    try:
        return getitem(x, along_key(index, d, x._device))
    except IndexError:  # reported by the kernel itself (see getitem)
        del checks[mark:]
        raise


def setitem(x: Tensor, key, value) -> None:
    """``x[key] = value``: ``x`` gets a new value (recorded when it is part of a graph)."""
    x._assign("__setitem__", lambda old: index_put(old, key, value))
