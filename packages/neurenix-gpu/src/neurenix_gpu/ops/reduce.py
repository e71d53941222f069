"""Reductions over axes: one block per output element, a tree in shared memory (``reduce_*``,
``argreduce_*``)."""

from __future__ import annotations

import math

import numpy as np

from ..runtime import I32, GpuBuffer
from ..source import BLOCK, ffi
from .elementwise import SUFFIX, cast
from .launch import contiguous_strides

_I64 = np.dtype(np.int64)


def _reduce(kernel: str, op: int, x: GpuBuffer, axes: tuple, keepdim: bool, out_dtype) -> GpuBuffer:
    strides = contiguous_strides(x.shape)
    kept = [d for d in range(len(x.shape)) if d not in axes]
    shape = tuple(1 if d in axes else n for d, n in enumerate(x.shape)) if keepdim else \
        tuple(x.shape[d] for d in kept)
    out = GpuBuffer(x.device, shape, out_dtype)
    r = ffi.new("nx_red*")
    r.nout, r.nred = out.size, math.prod(x.shape[d] for d in axes)
    r.nk, r.nr = len(kept), len(axes)
    r.kshape[0:len(kept)] = [x.shape[d] for d in kept]
    r.kstride[0:len(kept)] = [strides[d] for d in kept]
    r.rshape[0:len(axes)] = [x.shape[d] for d in axes]
    r.rstride[0:len(axes)] = [strides[d] for d in axes]
    if out.size:
        block = min(BLOCK, 1 << max(0, (r.nred - 1).bit_length()))  # a power of two: the tree halves it
        dev = x.device
        dev.launch(kernel, (min(out.size, dev.limits.max_grid[0], 65535), 1, 1), (block, 1, 1), r, I32(op), out, x)
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
