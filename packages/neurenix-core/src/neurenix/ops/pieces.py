"""Ops PyTorch scripts reach for, composed from indexing, shape and elementwise ops (so differentiable to
any order): index_select, masked_fill, masked_select, nonzero, scatter, scatter_add, repeat, flip, roll, tril,
triu, chunk, split, t, mm, bmm."""

from __future__ import annotations

import numpy as np

from ..arguments import boolean, integer
from ..errors import DTypeError, ShapeError
from ..tensor import tensor
from ._operands import Tensor, _wrap, as_scalar, broadcast_shapes, normalize_axes, normalize_dim, not_a_tensor
from .bounds import check as check_indices
from .elementwise import where
from .indexing import along_key, getitem, index_put, mask_indices
from .joining import cat, stack
from .linalg import matmul
from .shape import expand, not_a_view, reshape, transpose
from .transfer import clone


def _tensor(x, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise not_a_tensor(op, x)
    return x


def _int_index(index, op: str) -> Tensor:
    if not isinstance(index, Tensor) or index._data.dtype.kind != "i":
        raise IndexError(f"{op}: index must be an int64 tensor, got {getattr(index, 'dtype', type(index).__name__)}")
    return index


def index_select(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """The entries of ``x`` at ``index`` (a 1-D int64 tensor) along ``dim``."""
    d = normalize_dim(dim, _tensor(x, "index_select").ndim, "index_select")
    if _int_index(index, "index_select").ndim > 1:
        raise ShapeError(f"index_select: index must be 1-D, got shape {index.shape}")
    return getitem(x, (slice(None),) * d + (index.reshape(-1),))


def _bool_mask(mask, op: str) -> Tensor:
    if not isinstance(mask, Tensor) or mask._data.dtype.kind != "b":
        raise DTypeError(f"{op}: mask must be a bool tensor, got {getattr(mask, 'dtype', type(mask).__name__)}")
    return mask


def masked_fill(x: Tensor, mask: Tensor, value) -> Tensor:
    """``x`` with ``value`` (a number or a 0-d tensor) where the bool ``mask`` (broadcast to ``x``) is True."""
    _tensor(x, "masked_fill")
    _bool_mask(mask, "masked_fill")
    if isinstance(value, Tensor):
        if value.ndim:
            raise ShapeError(f"masked_fill: value must be a number or a 0-d tensor, got shape {value.shape}")
        value = value.to(x.dtype)
    elif as_scalar(value) is None:
        raise TypeError(f"masked_fill: value must be a number or a 0-d tensor, got {type(value).__name__}")
    out = where(mask, value, x)
    if out.shape != x.shape:
        raise ShapeError(f"masked_fill: mask of shape {mask.shape} does not broadcast to self {x.shape}")
    return out.to(x.dtype)


def masked_select(x: Tensor, mask: Tensor) -> Tensor:
    """The entries of ``x`` where the bool ``mask`` is True (the two broadcast together), as a 1-D tensor in
    row-major order; differentiable in ``x``. How many there are depends on the mask, which is read on the host."""
    _tensor(x, "masked_select")
    shape = broadcast_shapes(x.shape, _bool_mask(mask, "masked_select").shape, "masked_select")
    shape = shape or (1,)  # 0-d operands: a 1-D result of one entry or none, as PyTorch's
    return getitem(expand(x, shape), expand(mask, shape))


def nonzero(x: Tensor, as_tuple: bool = False):
    """Indices (int64) of the nonzero entries of ``x`` in row-major order: an ``(n, x.ndim)`` tensor, or with
    ``as_tuple`` a tuple of ``x.ndim`` 1-D tensors (one for a 0-d ``x``). NaN counts as nonzero. How many there
    are depends on the values, which are read on the host."""
    as_tuple = boolean(as_tuple, "as_tuple", "nonzero")
    hit = x if _tensor(x, "nonzero")._data.dtype.kind == "b" else x != 0
    coords = [_wrap(b, x._device) for b in mask_indices(reshape(hit, hit.shape or (1,)))]
    if as_tuple:
        return tuple(coords)
    return stack(coords, 1) if x.ndim else coords[0].new_zeros((coords[0].shape[0], 0))


def _scatter_key(x: Tensor, dim: int, index: Tensor, op: str) -> tuple:
    """The ``index_put`` key of PyTorch's scatter: ``x[i][index[i][j]][k]`` for every position of ``index``."""
    d = normalize_dim(dim, _tensor(x, op).ndim, op)
    _int_index(index, op)
    if index.ndim != x.ndim:
        raise ShapeError(f"{op}: index of shape {index.shape} must have as many dims as self {x.shape}")
    if any(n > x.shape[a] for a, n in enumerate(index.shape) if a != d):
        raise ShapeError(f"{op}: index of shape {index.shape} is larger than self {x.shape} outside dim {d}")
    check_indices(index._data, x._device, 0, x.shape[d], f"{op} along dim {d} of size {x.shape[d]}")
    return along_key(index, d, x._device)


def _source(src, index: Tensor, x: Tensor, op: str):
    if not isinstance(src, Tensor):
        if as_scalar(src) is None:
            raise TypeError(f"{op}: src must be a tensor or a number, got {type(src).__name__}")
        return tensor(src, dtype=x.dtype, device=x._device)
    if src.ndim != index.ndim or any(n > s for n, s in zip(index.shape, src.shape)):
        raise ShapeError(f"{op}: src of shape {src.shape} must be at least as large as index {index.shape}")
    return src[tuple(slice(0, n) for n in index.shape)].to(x.dtype)


def scatter(x: Tensor, dim: int, index: Tensor, src=None, value=None, reduce: str | None = None) -> Tensor:
    """A copy of ``x`` with ``x[..index[i][j]..] = src[i][j]`` along ``dim`` (PyTorch's scatter). Where
    ``index`` repeats a position, which value lands there is unspecified (as in PyTorch); ``reduce='add'``
    adds them up."""
    if src is None:
        src = value
    key = _scatter_key(x, dim, index, "scatter")
    if reduce not in (None, "add"):
        raise ValueError(f"scatter: reduce must be None or 'add', got {reduce!r} (use scatter_add)")
    return index_put(x, key, _source(src, index, x, "scatter"), accumulate=reduce == "add")


def scatter_add(x: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """A copy of ``x`` with ``src`` added at ``index`` along ``dim``; repeated positions add up."""
    key = _scatter_key(x, dim, index, "scatter_add")
    return index_put(x, key, _source(src, index, x, "scatter_add"), accumulate=True)


def repeat(x: Tensor, *sizes) -> Tensor:
    """``x`` tiled ``sizes[i]`` times along axis i (PyTorch's repeat; extra sizes add leading axes)."""
    sizes = sizes[0] if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
    sizes = tuple(integer(s, "sizes", "repeat", minimum=0) for s in sizes)
    if len(sizes) < _tensor(x, "repeat").ndim:
        raise ValueError(f"repeat: give at least one size per dim of shape {x.shape}, got {sizes}")
    shape = (1,) * (len(sizes) - x.ndim) + x.shape
    inter = tuple(v for s in shape for v in (1, s))
    tiled = tuple(v for r, s in zip(sizes, shape) for v in (r, s))
    out = reshape(expand(reshape(x, inter), tiled), tuple(r * s for r, s in zip(sizes, shape)))
    return clone(x) if out is x else not_a_view(out)  # a new tensor, as PyTorch's


def flip(x: Tensor, dims, *more_dims) -> Tensor:
    """A copy of ``x`` with the entries along each of ``dims`` (an int or a sequence) in reverse order;
    ``x.flip(0, 1)`` also names several."""
    if dims is None:
        raise TypeError("flip: dims must be an int or a sequence of ints, got None")
    axes = normalize_axes((dims, *more_dims) if more_dims else dims, _tensor(x, "flip").ndim, "flip")
    return clone(getitem(x, tuple(slice(None, None, -1) if a in axes else slice(None) for a in range(x.ndim))))


def _int_tuple(value, name: str, op: str) -> tuple:
    """An int or a non-empty sequence of ints as a tuple."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if not items:
        raise ValueError(f"{op}: {name} must be an int or a non-empty sequence of ints, got {value!r}")
    return tuple(integer(v, name, op) for v in items)


def roll(x: Tensor, shifts, dims=None) -> Tensor:
    """``x`` with its entries moved ``shifts`` places along ``dims`` (ints or equally long sequences), those
    pushed past the end coming back at the start; without ``dims``, along the flattened tensor (shape kept)."""
    _tensor(x, "roll")
    shifts = _int_tuple(shifts, "shifts", "roll")
    if dims is None:
        if len(shifts) != 1:
            raise ValueError(f"roll: without dims, shifts must be one int, got {shifts}")
        if x.ndim == 0:
            return clone(x)
        n = x.numel()  # one gather from the flattened tensor, at positions shaped like x
        order = (np.arange(n) - shifts[0] % max(n, 1)) % max(n, 1)
        return getitem(reshape(x, (n,)), Tensor(order.reshape(x.shape), device=x._device))
    dims = _int_tuple(dims, "dims", "roll")
    if len(dims) != len(shifts):
        raise ValueError(f"roll: shifts {shifts} and dims {dims} must have the same length")
    if x.ndim == 0:
        raise IndexError(f"roll: dims {dims} are out of range for a 0-d tensor (it has no dims)")
    out = x
    for shift, dim in zip(shifts, dims):
        d = normalize_dim(dim, x.ndim, "roll")
        n = x.shape[d]
        s = shift % n if n else 0
        if s:
            lead = (slice(None),) * d
            out = cat([out[lead + (slice(n - s, n),)], out[lead + (slice(0, n - s),)]], d)
    return clone(x) if out is x else out


def _triangle(x: Tensor, diagonal: int, upper: bool, op: str) -> Tensor:
    """``x`` with zeros below (``upper``) or above the ``diagonal``-th diagonal of its last two dims."""
    if _tensor(x, op).ndim < 2:
        raise ShapeError(f"{op}: expects a tensor of at least 2 dims (matrices in the last two), got shape {x.shape}")
    diagonal = integer(diagonal, "diagonal", op)
    rows, cols = x.shape[-2:]
    offset = np.arange(cols)[None, :] - np.arange(rows)[:, None]  # which diagonal each entry is on
    outside = offset < diagonal if upper else offset > diagonal
    return masked_fill(x, Tensor(outside, device=x._device), 0)


def tril(x: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the matrices in the last two dims of ``x``: entries above the ``diagonal``-th
    diagonal (0 the main one, positive above it, negative below) become zero."""
    return _triangle(x, diagonal, False, "tril")


def triu(x: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the matrices in the last two dims of ``x``: entries below the ``diagonal``-th
    diagonal (0 the main one, positive above it, negative below) become zero."""
    return _triangle(x, diagonal, True, "triu")


def split(x: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    """Pieces of ``x`` along ``dim``: of ``split_size`` each (the last may be smaller), or of the sizes given."""
    d = normalize_dim(dim, _tensor(x, "split").ndim, "split")
    n = x.shape[d]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = [integer(s, "split_size_or_sections", "split", minimum=0) for s in split_size_or_sections]
        if sum(sizes) != n:
            raise ValueError(f"split: sections {sizes} do not add up to dim {dim} of size {n}")
    else:
        size = integer(split_size_or_sections, "split_size", "split", minimum=1 if n else 0)
        sizes = [min(size, n - i) for i in range(0, n, size)] if n else [0]  # an empty dim: one empty piece
    starts = np.cumsum([0, *sizes[:-1]])
    return tuple(x[(slice(None),) * d + (slice(int(s), int(s) + k),)] for s, k in zip(starts, sizes))


def chunk(x: Tensor, chunks: int, dim: int = 0) -> tuple:
    """At most ``chunks`` pieces of ``x`` along ``dim``, of ``ceil(n / chunks)`` each (PyTorch's chunk; an empty
    dim gives ``chunks`` empty pieces)."""
    chunks = integer(chunks, "chunks", "chunk", minimum=1)
    n = _tensor(x, "chunk").shape[normalize_dim(dim, x.ndim, "chunk")]
    if n == 0:  # PyTorch: as many empty pieces as asked for
        return split(x, [0] * chunks, dim)
    return split(x, -(-n // chunks), dim)


def t(x: Tensor) -> Tensor:
    """The transpose of a matrix (a 0-d or 1-D tensor is returned as is)."""
    if _tensor(x, "t").ndim > 2:
        raise ShapeError(f"t: expects a tensor of at most 2 dims, got shape {x.shape}; use transpose or mT")
    return transpose(x, 0, 1) if x.ndim == 2 else x


def mm(a: Tensor, b: Tensor) -> Tensor:
    """Product of two matrices (2-D only; ``matmul`` broadcasts)."""
    if _tensor(a, "mm").ndim != 2 or _tensor(b, "mm").ndim != 2:
        raise ShapeError(f"mm: expects two 2-D tensors, got shapes {a.shape} and {b.shape}")
    return matmul(a, b)


def bmm(a: Tensor, b: Tensor) -> Tensor:
    """Batched product of (B, n, m) and (B, m, p) tensors (no broadcasting)."""
    if _tensor(a, "bmm").ndim != 3 or _tensor(b, "bmm").ndim != 3 or a.shape[0] != b.shape[0]:
        raise ShapeError(f"bmm: expects (B, n, m) and (B, m, p) tensors, got shapes {a.shape} and {b.shape}")
    return matmul(a, b)
