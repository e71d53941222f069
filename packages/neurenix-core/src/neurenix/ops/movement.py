"""Ops that move data without arithmetic: reshape, permute, expand, indexing, cat, pad, transfers."""

from __future__ import annotations

import numpy as np

from .. import dtypes as _dt
from ..arguments import integer
from ..autograd.grad_mode import state as grad_state
from ..autograd.graph import record
from ..device import Device
from ..errors import DeviceError, ShapeError
from ._operands import (
    Tensor,
    _wrap,
    broadcast_shapes,
    device_mismatch,
    not_a_tensor,
    promote_pair,
    remember,
    sum_to,
)
from .elementwise import cast
from .indices import check as check_indices
from .reduce import normalize_dim


def _shape_arg(shape) -> tuple:
    """``f(2, 3)`` or ``f((2, 3))`` -> ``(2, 3)``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return shape if type(shape) is tuple else tuple(shape)


_reshape_cache: dict = {}


def _resolve_shape(old: tuple, new: tuple) -> tuple:
    """``new`` with its -1 filled in; a ShapeError if the sizes do not match."""
    key = (old, new)
    try:
        out = _reshape_cache.get(key)
    except TypeError:  # unhashable sizes: not ints, which integer() below says
        out, key = None, None
    if out is None:
        new = tuple(integer(s, "shape", "reshape") for s in new)
        n = 1
        for s in old:
            n *= s
        known = 1
        for s in new:
            if s != -1:
                known *= s
        holes = new.count(-1)
        if holes > 1 or any(s < -1 for s in new):
            raise ShapeError(f"reshape: invalid shape {new}")
        out = tuple(n // known if s == -1 else s for s in new) if holes and known else new
        m = 1
        for s in out:
            m *= s
        if m != n or (holes and known == 0):
            raise ShapeError(f"reshape: cannot reshape a tensor of shape {old} ({n} elements) into {new}")
        if key is not None:
            remember(_reshape_cache, key, out)
    return out


def reshape(x: Tensor, *shape) -> Tensor:
    """The same elements in a new shape (one entry may be -1)."""
    try:
        old = x._data.shape
    except AttributeError:
        raise not_a_tensor("reshape", x) from None
    shape = _resolve_shape(old, _shape_arg(shape))
    if shape == x._data.shape:
        return x
    out = _wrap(x._device.kernels.reshape(x._data, shape), x._device)
    out._version = -1  # a view: refuses in-place changes (see tensor.py)
    if x.requires_grad and grad_state.enabled:
        old = x._data.shape
        record(out, "Reshape", (x,), lambda g, o: (reshape(g, old),), saved=())
    return out


_perm_cache: dict = {}


def _permutation(dims: tuple, ndim: int) -> tuple:
    """``dims`` checked and made non-negative, with its inverse; (None, None) for the identity."""
    key = (dims, ndim)
    try:
        hit = _perm_cache.get(key)
    except TypeError:  # unhashable dims: not ints, which normalize_dim says
        hit = None
    if hit is None:
        perm = tuple(normalize_dim(d, ndim, "permute") for d in dims)
        if sorted(perm) != list(range(ndim)):
            raise ValueError(f"permute: {dims} is not a permutation of the axes of a {ndim}-dimensional tensor")
        inverse = tuple(int(i) for i in np.argsort(perm))
        hit = remember(_perm_cache, key, (None, None) if perm == tuple(range(ndim)) else (perm, inverse))
    return hit


def _permute(x: Tensor, perm: tuple, inverse: tuple) -> Tensor:
    out = _wrap(x._device.kernels.permute(x._data, perm), x._device)
    out._version = -1  # a view
    if x.requires_grad and grad_state.enabled:
        record(out, "Permute", (x,), lambda g, o: (_permute(g, inverse, perm),), saved=())
    return out


def permute(x: Tensor, *dims) -> Tensor:
    """Reorder the axes: output axis i is input axis ``dims[i]``."""
    try:
        nd = len(x._data.shape)
    except AttributeError:
        raise not_a_tensor("permute", x) from None
    perm, inverse = _permutation(_shape_arg(dims), nd)
    return x if perm is None else _permute(x, perm, inverse)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two axes."""
    nd = len(x._data.shape)
    dims = list(range(nd))
    a, b = normalize_dim(dim0, nd, "transpose"), normalize_dim(dim1, nd, "transpose")
    dims[a], dims[b] = dims[b], dims[a]
    return permute(x, tuple(dims))


_SWAP_LAST_TWO: dict = {}


def last_two_swapped(ndim: int) -> tuple:
    """The permutation that swaps the last two of ``ndim`` axes (its own inverse)."""
    perm = _SWAP_LAST_TWO.get(ndim)
    if perm is None:
        perm = _SWAP_LAST_TWO[ndim] = tuple(range(ndim - 2)) + (ndim - 1, ndim - 2)
    return perm


def mT(x: Tensor) -> Tensor:  # noqa: N802 - PyTorch's name
    """Swap the last two axes (batched matrix transpose)."""
    nd = len(x._data.shape)
    if nd < 2:
        raise ShapeError(f"mT needs at least 2 dimensions, got shape {x.shape}")
    perm = last_two_swapped(nd)
    return _permute(x, perm, perm)


def T(x: Tensor) -> Tensor:  # noqa: N802
    """Reverse the axes (the matrix transpose of a 2-D tensor)."""
    return permute(x, tuple(reversed(range(len(x._data.shape)))))


def expand(x: Tensor, *sizes) -> Tensor:
    """Broadcast to ``sizes`` without copying (-1 keeps an axis; new axes go in front)."""
    sizes = _shape_arg(sizes)
    old = x._data.shape
    if len(sizes) < len(old):
        raise ShapeError(f"expand: cannot expand shape {old} to fewer dimensions {sizes}")
    lead = len(sizes) - len(old)
    shape = tuple(old[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(sizes))
    for i, s in enumerate(old):
        if s != 1 and s != shape[i + lead]:
            raise ShapeError(f"expand: cannot expand shape {old} to {sizes}")
    if shape == old:
        return x
    out = _wrap(x._device.kernels.expand(x._data, shape), x._device)
    out._version = -1  # a view
    if x.requires_grad and grad_state.enabled:
        record(out, "Expand", (x,), lambda g, o: (sum_to(g, old),), saved=())
    return out


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    """Insert an axis of size 1 at ``dim``."""
    nd = x.ndim + 1
    d = normalize_dim(dim, nd, "unsqueeze")
    s = x._data.shape
    return reshape(x, s[:d] + (1,) + s[d:])


def squeeze(x: Tensor, dim=None) -> Tensor:
    """Remove axes of size 1 (only ``dim``, if given and of size 1)."""
    s = x._data.shape
    if dim is None:
        return reshape(x, tuple(n for n in s if n != 1))
    dims = {normalize_dim(d, x.ndim, "squeeze") for d in ((dim,) if isinstance(dim, int) else dim)}
    return reshape(x, tuple(n for i, n in enumerate(s) if not (i in dims and n == 1)))


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge axes ``start_dim..end_dim`` into one."""
    if x.ndim == 0:
        return reshape(x, (1,))
    a, b = normalize_dim(start_dim, x.ndim, "flatten"), normalize_dim(end_dim, x.ndim, "flatten")
    s = x._data.shape
    n = 1
    for v in s[a:b + 1]:
        n *= v
    return reshape(x, s[:a] + (n,) + s[b + 1:])


def unflatten(x: Tensor, dim: int, sizes) -> Tensor:
    """Split axis ``dim`` into ``sizes``."""
    d = normalize_dim(dim, x.ndim, "unflatten")
    s = x._data.shape
    return reshape(x, s[:d] + tuple(sizes) + s[d + 1:])


# -- indexing ---------------------------------------------------------------------------------------


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
                if k.shape != shape[axis:axis + k.ndim]:
                    raise IndexError(f"bool mask of shape {k.shape} does not match axes {axis}.. of shape {shape}")
                out.extend(dev.kernels.from_numpy(nz.astype(np.int64), dev.index) for nz in np.nonzero(k.numpy()))
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


_BASIC = (int, slice, type(None))


def getitem(x: Tensor, key) -> Tensor:
    """``x[key]`` with NumPy's basic and advanced (integer-array, bool-mask) indexing."""
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
    out._version = -1  # basic indexing makes a view
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
    checks = x._device.checks
    mark = len(checks)
    key = normalize_key(x, key)
    if not isinstance(values, Tensor):
        values = Tensor(values, dtype=x.dtype, device=x._device)
    elif values._device is not x._device:
        raise device_mismatch("index_put", x, values)
    if values._data.dtype is not x._data.dtype:
        values = values.to(x.dtype)
    try:
        return _index_put(x, key, values, accumulate)
    except IndexError:  # reported by the kernel itself (see getitem)
        del checks[mark:]
        raise


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
    key = []
    for axis, n in enumerate(index.shape):
        if axis == d:
            key.append(index)
        else:
            shape = [1] * index.ndim
            shape[axis] = n
            key.append(Tensor(np.arange(n).reshape(shape), device=x._device))
    try:
        return getitem(x, tuple(key))
    except IndexError:  # reported by the kernel itself (see getitem)
        del checks[mark:]
        raise


# -- joining and padding ----------------------------------------------------------------------------


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


# -- copies and transfers ---------------------------------------------------------------------------


def clone(x: Tensor) -> Tensor:
    """A copy that shares no memory with ``x`` (differentiable)."""
    out = _wrap(x._device.kernels.copy(x._data), x._device)
    if x.requires_grad and grad_state.enabled:
        record(out, "Clone", (x,), lambda g, o: (g,), saved=())
    return out


def to_device(x: Tensor, device: Device) -> Tensor:
    """``x`` on ``device`` (``x`` itself if already there); gradients flow back across."""
    if device is x._device:
        return x
    if x._device.checks:  # a synchronisation of x's device
        x._device.raise_pending()
    host = x._device.kernels.to_numpy(x._data)
    arr = np.array(host, order="C", copy=True)
    out = _wrap(device.kernels.from_numpy(arr, device.index), device)
    if x.requires_grad and grad_state.enabled:
        src = x._device
        record(out, "ToDevice", (x,), lambda g, o: (to_device(g, src),), saved=())
    return out


_DTYPE_NAMES = {d.name for d in _dt.DTYPES}


def to(x: Tensor, *args, **kwargs) -> Tensor:
    """``to(device)``, ``to(dtype)`` or ``to(device, dtype)``: a differentiable copy (or ``x`` if unchanged)."""
    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    if kwargs:
        raise TypeError(f"to() got unexpected arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, (_dt.DType, type)) or (isinstance(a, str) and a in _DTYPE_NAMES):
            dtype = a
        else:
            device = a
    if dtype is not None:
        x = cast(x, _dt.as_dtype(dtype))
    if device is not None:
        x = to_device(x, Device(device))
    return x


def setitem(x: Tensor, key, value) -> None:
    """``x[key] = value``: ``x`` gets a new value (recorded when it is part of a graph)."""
    x._assign("__setitem__", lambda old: index_put(old, key, value))
