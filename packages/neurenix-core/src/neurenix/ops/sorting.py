"""Sorting: sort, argsort, topk and unique.

The order is found on the host (NumPy), as a host step of a captured program (so a compiled function
sorts its fresh values at every replay); values are then picked with ``gather``, so they are
differentiable as gathers are. No backend kernel is involved.
"""

from __future__ import annotations

import numpy as np

from .. import dtypes as _dt
from ..arguments import boolean, integer
from ..capture import recording
from ._operands import Tensor, _wrap, normalize_dim, not_a_tensor
from .indexing import gather
from .reduce import values_indices


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
        return values_indices(x, idx)
    idx = idx[(slice(None),) * axis + (slice(0, k),)]
    return values_indices(gather(x, axis, idx), idx)


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
