"""Sorting: sort, argsort, topk, median and unique.

The order is found on the host (NumPy), as a host step of a captured program (so a compiled function
sorts its fresh values at every replay); values are then picked with ``gather``, so they are
differentiable as gathers are. No backend kernel is involved.
"""

from __future__ import annotations

import math

import numpy as np

from .. import dtypes as _dt
from ..arguments import boolean, integer
from ..capture import recording
from ..errors import DTypeError
from ._operands import Tensor, _wrap, normalize_dim, not_a_tensor
from .elementwise import where
from .indexing import gather
from .numeric import isnan
from .reduce import values_indices
from .shape import not_a_view, reshape


def _host_order(buf, dev, axis: int, descending: bool):
    """Indices sorting ``buf`` stably along ``axis`` (NaN last ascending, first descending, as in PyTorch)."""
    a = np.asarray(dev.kernels.to_numpy(buf))
    if a.dtype.kind == "b":
        a = a.astype(np.int64)
    if not descending:
        order = np.argsort(a, axis=axis, kind="stable")
    elif a.dtype.kind != "f":
        order = np.argsort(~a, axis=axis, kind="stable")  # ~a = -a - 1 reverses the order without overflow
    else:
        nan = np.isnan(a)
        order = np.argsort(np.where(nan, 0, -a), axis=axis, kind="stable")
        order = np.take_along_axis(order, np.argsort(~np.take_along_axis(nan, order, axis), axis=axis,
                                                     kind="stable"), axis)
    return dev.kernels.from_numpy(np.ascontiguousarray(order, dtype=np.int64), dev.index)


def _order(x: Tensor, dim: int, descending, stable, op: str):
    try:
        nd = x.ndim
    except AttributeError:
        raise not_a_tensor(op, x) from None
    axis = normalize_dim(dim, nd, op)
    descending = boolean(descending, "descending", op)
    stable = boolean(stable, "stable", op)
    if nd == 0:
        return axis, _wrap(x._device.kernels.full((), 0, _dt.int64.np, x._device.index), x._device)
    dev = x._device
    return axis, _wrap(recording.host(_host_order, x._data, dev, axis, descending), dev)


def argsort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """Indices (int64) that sort ``x`` along ``dim``; ties keep their order (the sort is always stable)."""
    return _order(x, dim, descending, stable, "argsort")[1]


def sort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):
    """``(values, indices)`` of ``x`` sorted along ``dim``; values are differentiable."""
    axis, idx = _order(x, dim, descending, stable, "sort")
    if x.ndim == 0:
        return values_indices(x * 1 if x.requires_grad else x, idx)
    return values_indices(gather(x, axis, idx), idx)


def topk(x: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """``(values, indices)`` of the ``k`` largest (smallest with ``largest=False``) entries along ``dim``."""
    try:
        nd = x.ndim
    except AttributeError:
        raise not_a_tensor("topk", x) from None
    axis = normalize_dim(dim, nd, "topk")
    size = x.shape[axis] if nd else 1
    k = integer(k, "k", "topk", minimum=0)
    if k > size:
        raise ValueError(f"topk: k ({k}) is larger than dim {dim} of size {size} (shape {x.shape})")
    _, idx = _order(x, axis, boolean(largest, "largest", "topk"), True, "topk")
    if nd == 0:
        return values_indices(x * 1, idx)
    idx = not_a_view(idx[(slice(None),) * axis + (slice(0, k),)])  # (a slice of the order: no one else's)
    return values_indices(gather(x, axis, idx), idx)


def median(x: Tensor, dim: int | None = None, keepdim: bool = False):
    """The lower median (of an even count, the smaller middle value, as PyTorch's): of all entries if ``dim`` is
    None (a 0-d tensor; NaN for an empty float tensor), else ``(values, indices)`` along ``dim``, each index
    that of the median in a stable sort. A NaN among the entries makes the median NaN (its index the first
    NaN's). Values are differentiable (the gradient goes to the median entry)."""
    keepdim = boolean(keepdim, "keepdim", "median")
    try:
        kind = x._data.dtype.kind
    except AttributeError:
        raise not_a_tensor("median", x) from None
    if kind == "b":
        raise DTypeError("median: not defined for bool tensors (cast with .long() or .float())")
    if dim is None:
        if keepdim:
            raise ValueError("median: keepdim=True needs a dim (the median of all entries is a 0-d tensor)")
        if x.numel() == 0 and kind != "f":
            raise ValueError(f"median: an empty {x.dtype} tensor has no median (only float tensors give NaN)")
        return x.new_full((), math.nan) if x.numel() == 0 else median(reshape(x, (x.numel(),)), 0).values
    axis = normalize_dim(dim, x.ndim, "median")
    values, order = sort(x, axis)  # stable, NaN last
    if x.ndim == 0:
        return values_indices(x * 1, order)
    n = x.shape[axis]
    if n == 0:
        raise IndexError(f"median: dim {dim} of a tensor of shape {x.shape} is empty: it has no median")
    nans = isnan(x).sum(axis, keepdim=True)  # where there are some, the first of them (in sorted order) is taken
    at = where(nans > 0, n - nans, (n - 1) // 2)
    picked = (gather(values, axis, at), gather(order, axis, at))
    return values_indices(*(p if keepdim else not_a_view(p.squeeze(axis)) for p in picked))


def unique(x: Tensor, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False,
           dim: int | None = None):
    """The distinct values of ``x`` (flattened), sorted; optionally the inverse indices (shape of ``x``) and the
    counts. Not differentiable; its size depends on the values, so it synchronises with the device."""
    if not isinstance(x, Tensor):
        raise not_a_tensor("unique", x)
    if dim is not None:
        raise NotImplementedError("unique: dim is not supported; unique works on the flattened tensor")
    recording.refuse("unique's output size depends on the values (a captured program has fixed shapes)")
    host = x.numpy()
    values, inverse, counts = np.unique(host, return_inverse=True, return_counts=True)
    dev = x.device
    out = [Tensor(values.astype(host.dtype), device=dev)]
    if return_inverse:
        out.append(Tensor(inverse.reshape(x.shape).astype(np.int64), device=dev))
    if return_counts:
        out.append(Tensor(counts.astype(np.int64), device=dev))
    return out[0] if len(out) == 1 else tuple(out)
