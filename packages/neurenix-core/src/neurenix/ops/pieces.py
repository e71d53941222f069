"""Ops PyTorch scripts reach for, composed from indexing, shape and elementwise ops (so differentiable to
any order): index_select, masked_fill, scatter, scatter_add, repeat, chunk, split, t, mm, bmm."""

from __future__ import annotations

import numpy as np

from ..arguments import integer
from ..errors import DTypeError, ShapeError
from ..tensor import tensor
from ._operands import Tensor, as_scalar, normalize_dim, not_a_tensor
from .bounds import check as check_indices
from .elementwise import where
from .indexing import along_key, getitem, index_put
from .linalg import matmul
from .shape import expand, reshape, transpose


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


def masked_fill(x: Tensor, mask: Tensor, value) -> Tensor:
    """``x`` with ``value`` (a number or a 0-d tensor) where the bool ``mask`` (broadcast to ``x``) is True."""
    _tensor(x, "masked_fill")
    if not isinstance(mask, Tensor) or mask._data.dtype.kind != "b":
        raise DTypeError(f"masked_fill: mask must be a bool tensor, got {getattr(mask, 'dtype', type(mask).__name__)}")
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
    return reshape(expand(reshape(x, inter), tiled), tuple(r * s for r, s in zip(sizes, shape)))


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
