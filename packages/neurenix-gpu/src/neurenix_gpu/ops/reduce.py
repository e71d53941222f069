"""Reductions over axes: one block per output element, a tree in shared memory (``reduce_*``,
``argreduce_*``)."""

from __future__ import annotations

import math

import numpy as np

from ..runtime import GpuBuffer
from ..source import BLOCK, ffi
from .elementwise import SUFFIX, cast
from .launch import OPS, PARAMS, PTRS, Plan, contiguous_strides, remember

_I64 = np.dtype(np.int64)


def _plan(dev, key: tuple, kernel: str, shape: tuple, axes: tuple, keepdim: bool) -> Plan:
    """The ``nx_red`` struct, grid and block of reducing ``axes`` of a contiguous ``shape``."""
    strides = contiguous_strides(shape)
    kept = [d for d in range(len(shape)) if d not in axes]
    out = tuple(1 if d in axes else n for d, n in enumerate(shape)) if keepdim else tuple(shape[d] for d in kept)
    r = ffi.new("nx_red*")
    r.nout, r.nred = math.prod(out), math.prod(shape[d] for d in axes)
    r.nk, r.nr = len(kept), len(axes)
    r.kshape[0:len(kept)] = [shape[d] for d in kept]
    r.kstride[0:len(kept)] = [strides[d] for d in kept]
    r.rshape[0:len(axes)] = [shape[d] for d in axes]
    r.rstride[0:len(axes)] = [strides[d] for d in axes]
    fn, grid = None, (min(r.nout, dev.limits.max_grid[0], 65535), 1, 1)
    block = (min(BLOCK, 1 << max(0, (r.nred - 1).bit_length())), 1, 1)  # a power of two: the tree halves it
    if r.nout:
        dev.check_launch(kernel, grid, block)
        fn = dev.function(kernel)
    return remember(dev, key, Plan(fn, grid, block, r, out))


def _reduce(kernel: str, op: int, x: GpuBuffer, axes: tuple, keepdim: bool, out_dtype) -> GpuBuffer:
    """One block per output element (``reduce_*``, ``argreduce_*``), with a plan per kernel and layout."""
    dev = x.device
    key = (kernel, x.shape, axes, keepdim)
    plan = dev.plans.get(key) or _plan(dev, key, kernel, x.shape, axes, keepdim)
    out = GpuBuffer(dev, plan.shape, out_dtype)
    if plan.fn is not None:
        ptrs = ffi.new(PTRS, (out.ptr, x.ptr))
        dev.run(plan.fn, plan.grid, plan.block, ffi.new(PARAMS, (plan.struct, OPS[op], ptrs, ptrs + 1)))
    return out


def _reduction(name: str, op: int):
    def kernel(x, axes, keepdim):
        if name == "sum" and x.dtype == np.dtype(bool):
            x = cast(x, _I64)
        return _reduce(f"reduce_{SUFFIX[x.dtype]}", op, x, tuple(axes), keepdim, x.dtype)
    kernel.__name__ = name
    return kernel


def _argreduction(name: str, op: int):
    def kernel(x, axis, keepdim):
        return _reduce(f"argreduce_{SUFFIX[x.dtype]}", op, x, (axis,), keepdim, _I64)
    kernel.__name__ = name
    return kernel


KERNELS = {
    **{name: _reduction(name, op) for name, op in (("sum", 0), ("max", 1), ("min", 2))},
    **{name: _argreduction(name, op) for name, op in (("argmax", 0), ("argmin", 1))},
}
