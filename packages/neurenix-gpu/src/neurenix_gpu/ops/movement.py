"""Kernels that move elements: reshape, permute, expand, indexing, concatenation and padding, all through
strided views and the copy kernels (``gather_*``, ``scatter_*`` for advanced indexing)."""

from __future__ import annotations

import numpy as np

from ..runtime import I32, GpuBuffer
from .elementwise import BINARY, SUFFIX, cast, copy, copy_name, copy_view, full
from .launch import View, broadcast_strides, contiguous_strides, elementwise, launch_1d, view


def reshape(x, shape):
    return GpuBuffer(x.device, tuple(shape), x.dtype, x.mem)


def permute(x, axes):
    st = contiguous_strides(x.shape)
    return copy_view(View(x, tuple(x.shape[a] for a in axes), tuple(st[a] for a in axes)))


def expand(x, shape):
    shape = tuple(shape)
    return copy_view(View(x, shape, broadcast_strides(x.shape, contiguous_strides(x.shape), shape)))


def _basic_view(v: View, key) -> View:
    """The view ``v[key]`` for a key of ints, slices and None."""
    shape, strides, offset, d = [], [], v.offset, 0
    for k in key:
        if k is None:
            shape.append(1)
            strides.append(0)
            continue
        if isinstance(k, slice):
            start, stop, step = k.indices(v.shape[d])
            shape.append(len(range(start, stop, step)))
            strides.append(v.strides[d] * step)
            offset += start * v.strides[d]
        else:
            offset += int(k) * v.strides[d]
        d += 1
    return View(v.buf, tuple(shape) + v.shape[d:], tuple(strides) + v.strides[d:], offset)


def _is_basic(key) -> bool:
    return all(k is None or isinstance(k, (int, np.integer, slice)) for k in key)


def _offsets(x: GpuBuffer, key) -> GpuBuffer:
    """Element offsets of ``x[key]`` (advanced indexing), worked out on the host with NumPy's own rules.
    The index buffers are read back to do it: correct for every key, at the cost of one synchronization."""
    np_key = tuple(k.device.download(k) if isinstance(k, GpuBuffer) else k for k in key)
    return x.device.upload(np.arange(x.size, dtype=np.int64).reshape(x.shape)[np_key])


def getitem(x, key):
    if _is_basic(key):
        return copy_view(_basic_view(view(x), key))
    off = _offsets(x, key)
    out = GpuBuffer(x.device, off.shape, x.dtype)
    return launch_1d(f"gather_{SUFFIX[x.dtype]}", out, out.size, out, x, off)


def index_put(x, key, values, accumulate):
    out = copy(x)
    s = SUFFIX[x.dtype]
    if not isinstance(values, GpuBuffer):
        values = full(x.device, (), values, x.dtype)
    elif values.dtype != x.dtype:
        values = cast(values, x.dtype)
    if _is_basic(key):
        target = _basic_view(view(out), key)
        if accumulate:
            elementwise(f"binary_{s}", target, (target, values), BINARY["add"])
        else:
            elementwise(copy_name(x.dtype, x.dtype), target, (values,))
        return out
    off = _offsets(x, key)
    launch_1d(f"scatter_{s}", off, off.size, I32(bool(accumulate)), out, expand(values, off.shape), off)
    return out


def cat(xs, axis):
    shape = list(xs[0].shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    out = GpuBuffer(xs[0].device, tuple(shape), xs[0].dtype)
    st, at = contiguous_strides(shape), 0
    for x in xs:
        elementwise(copy_name(x.dtype, x.dtype), View(out, x.shape, st, at * st[axis]), (x,))
        at += x.shape[axis]
    return out


def pad(x, pads, value):
    shape = tuple(n + b + a for n, (b, a) in zip(x.shape, pads))
    out = full(x.device, shape, value, x.dtype)
    st = contiguous_strides(shape)
    elementwise(copy_name(x.dtype, x.dtype), View(out, x.shape, st, sum(b * t for (b, _), t in zip(pads, st))), (x,))
    return out


KERNELS = {"reshape": reshape, "permute": permute, "expand": expand, "getitem": getitem, "index_put": index_put,
           "cat": cat, "pad": pad}
