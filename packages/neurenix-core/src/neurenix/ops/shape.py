"""Shape ops: the same elements seen another way (reshape, permute, transpose, expand, squeeze,
unsqueeze, flatten). Their results are views: they refuse in-place changes (see tensor.py)."""

from __future__ import annotations

import numpy as np

from ..arguments import integer
from ..autograd.grad_mode import state as grad_state
from ..autograd.graph import record
from ..errors import ShapeError
from ..tensor import mark_view
from ._operands import Tensor, _wrap, normalize_dim, not_a_tensor, remember, sum_to


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
    # a float finds an int's entry (3.0 == 3): a sum of sizes that is not an int sends them to integer() below
    if out is None or sum(new).__class__ is not int:
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


def not_a_view(out: Tensor) -> Tensor:
    """``out``, made by view ops (reshape, expand...) from values no one else holds, as the new tensor PyTorch's op
    gives: in-place changes to it are allowed (nothing could see them, unlike a view of the caller's tensor)."""
    if out._version < 0:
        out._version, out._shared = 0, None
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
    mark_view(out, x)  # a view: refuses in-place changes (see tensor.py)
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
    mark_view(out, x)  # a view
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
        perm = remember(_SWAP_LAST_TWO, ndim, tuple(range(ndim - 2)) + (ndim - 1, ndim - 2))
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
    mark_view(out, x)  # a view
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
