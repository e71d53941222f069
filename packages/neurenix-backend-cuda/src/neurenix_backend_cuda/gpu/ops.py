"""The neurenix kernel set on a GPU: Python that shapes the launches of nx_kernels.cu.

Buffers are contiguous; a strided *view* (shape, strides, offset over a buffer) is how one kernel does
broadcasting, permutes, slices, and writes into part of an output (pad, cat, index_put).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from . import BLOCK, MAXDIM, TILE, ffi
from .runtime import I32, GpuBuffer

SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64", np.dtype(np.int64): "i64", np.dtype(bool): "b8"}
UNARY = {n: i for i, n in enumerate(("neg", "abs", "sign", "relu", "exp", "log", "sqrt", "sin", "cos", "tanh",
                                     "sigmoid"))}
BINARY = {n: i for i, n in enumerate(("add", "sub", "mul", "div", "pow", "maximum", "minimum"))}
COMPARE = {n: i for i, n in enumerate(("eq", "ne", "lt", "le", "gt", "ge"))}
_I64 = np.dtype(np.int64)


def _strides(shape) -> tuple:
    out, s = [], 1
    for d in reversed(shape):
        out.append(s)
        s *= d
    return tuple(reversed(out))


class View(NamedTuple):
    buf: GpuBuffer
    shape: tuple
    strides: tuple   # elements
    offset: int = 0


def view(buf: GpuBuffer) -> View:
    return View(buf, buf.shape, _strides(buf.shape))


def _broadcast(v: View, shape: tuple) -> tuple:
    """``v``'s strides aligned to ``shape`` (stride 0 along broadcast axes)."""
    pad = len(shape) - len(v.shape)
    return (0,) * pad + tuple(0 if d == 1 and n != 1 else s for d, n, s in zip(v.shape, shape[pad:], v.strides))


def _launch_ew(kernel: str, out: View, ins: list, op=None) -> None:
    """One elementwise kernel over ``out``'s shape; ``ins`` are Views, buffers or Python scalars."""
    shape = out.shape
    n = math.prod(shape)
    if n == 0:
        return
    if len(shape) > MAXDIM:
        raise ValueError(f"{kernel}: tensors of more than {MAXDIM} dimensions are not supported (shape {shape})")
    g = ffi.new("nx_geo*")
    g.n, g.ndim = n, len(shape)
    g.shape[0:len(shape)] = list(shape)
    ptrs = []
    for k, v in enumerate([out, *ins]):
        if isinstance(v, GpuBuffer):
            v = view(v)
        if isinstance(v, View):
            g.stride[k][0:len(shape)] = list(_broadcast(v, shape))
            g.offset[k] = v.offset
            ptrs.append(v.buf)
        else:  # a Python scalar: the kernel reads it from the struct where the pointer is null
            g.fscal[k], g.iscal[k] = float(v), int(v) if not (isinstance(v, float) and not math.isfinite(v)) else 0
            ptrs.append(None)
    dev = out.buf.device
    args = [g] + ([I32(op)] if op is not None else []) + ptrs
    dev.launch(kernel, dev.grid_1d(n, BLOCK), (BLOCK, 1, 1), *args)


def _shape(*xs) -> tuple:
    return np.broadcast_shapes(*(x.shape for x in xs if isinstance(x, (GpuBuffer, View))))


def _device(*xs):
    for x in xs:
        if isinstance(x, GpuBuffer):
            return x.device
        if isinstance(x, (list, tuple)):
            d = _device(*x)
            if d is not None:
                return d
    return None


def _new(dev, shape, dtype) -> GpuBuffer:
    return GpuBuffer(dev, shape, dtype)


def cast(x: GpuBuffer, dtype) -> GpuBuffer:
    dtype = np.dtype(dtype)
    out = _new(x.device, x.shape, dtype)
    _launch_ew(f"copy_{SUFFIX[x.dtype]}_{SUFFIX[dtype]}", view(out), [x])
    return out


def copy_view(v: View) -> GpuBuffer:
    """A contiguous copy of a strided view."""
    out = _new(v.buf.device, v.shape, v.buf.dtype)
    s = SUFFIX[v.buf.dtype]
    _launch_ew(f"copy_{s}_{s}", view(out), [v])
    return out


def _operands(a, b):
    """Bring a binary op's operands to one dtype, NumPy's (NEP 50: Python scalars are weak)."""
    bufs = [x for x in (a, b) if isinstance(x, GpuBuffer)]
    dtype = np.result_type(*(x.dtype if isinstance(x, GpuBuffer) else x for x in (a, b)))
    a, b = (cast(x, dtype) if isinstance(x, GpuBuffer) and x.dtype != dtype else x for x in (a, b))
    return a, b, dtype, bufs[0].device


def _binary(name):
    op = BINARY[name]

    def kernel(a, b):
        a, b, dtype, dev = _operands(a, b)
        out = _new(dev, _shape(a, b), dtype)
        _launch_ew(f"binary_{SUFFIX[dtype]}", view(out), [a, b], op)
        return out
    kernel.__name__ = name
    return kernel


def _compare(name):
    op = COMPARE[name]

    def kernel(a, b):
        a, b, dtype, dev = _operands(a, b)
        out = _new(dev, _shape(a, b), np.dtype(bool))
        _launch_ew(f"compare_{SUFFIX[dtype]}", view(out), [a, b], op)
        return out
    kernel.__name__ = name
    return kernel


def _unary(name):
    op = UNARY[name]

    def kernel(x):
        out = _new(x.device, x.shape, x.dtype)
        _launch_ew(f"unary_{SUFFIX[x.dtype]}", view(out), [x], op)
        return out
    kernel.__name__ = name
    return kernel


def where(cond, a, b):
    dtype = np.result_type(*(x.dtype if isinstance(x, GpuBuffer) else x for x in (a, b)))
    a, b = (cast(x, dtype) if isinstance(x, GpuBuffer) and x.dtype != dtype else x for x in (a, b))
    out = _new(_device(cond, a, b), _shape(cond, a, b), dtype)
    _launch_ew(f"where_{SUFFIX[dtype]}", view(out), [cond, a, b])
    return out


def _reduce_launch(kernel: str, op: int, x: GpuBuffer, axes, keepdim, out_dtype) -> GpuBuffer:
    strides = _strides(x.shape)
    kept = [d for d in range(len(x.shape)) if d not in axes]
    shape = tuple(1 if d in axes else n for d, n in enumerate(x.shape)) if keepdim else \
        tuple(x.shape[d] for d in kept)
    out = _new(x.device, shape, out_dtype)
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


def _reduction(name, op):
    def kernel(x, axes, keepdim):
        if name == "sum" and x.dtype == np.dtype(bool):
            x = cast(x, _I64)
        return _reduce_launch(f"reduce_{SUFFIX[x.dtype]}", op, x, tuple(axes), keepdim, x.dtype)
    kernel.__name__ = name
    return kernel


def _argreduction(name, op):
    def kernel(x, axis, keepdim):
        return _reduce_launch(f"argreduce_{SUFFIX[x.dtype]}", op, x, (axis,), keepdim, _I64)
    kernel.__name__ = name
    return kernel


def reshape(x, shape):
    return GpuBuffer(x.device, shape, x.dtype, x.mem)


def permute(x, axes):
    st = _strides(x.shape)
    return copy_view(View(x, tuple(x.shape[a] for a in axes), tuple(st[a] for a in axes)))


def expand(x, shape):
    shape = tuple(shape)
    return copy_view(View(x, shape, _broadcast(view(x), shape)))


def copy(x):
    return copy_view(view(x))


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
    out = _new(x.device, off.shape, x.dtype)
    if out.size:
        x.device.launch(f"gather_{SUFFIX[x.dtype]}", x.device.grid_1d(out.size, BLOCK), (BLOCK, 1, 1),
                        out.size, out, x, off)
    return out


def index_put(x, key, values, accumulate):
    out = copy(x)
    s = SUFFIX[x.dtype]
    if not isinstance(values, GpuBuffer):
        values = full((), values, x.dtype, x.device.index, x.device)
    elif values.dtype != x.dtype:
        values = cast(values, x.dtype)
    if _is_basic(key):
        target = _basic_view(view(out), key)
        if accumulate:
            _launch_ew(f"binary_{s}", target, [target, values], BINARY["add"])
        else:
            _launch_ew(f"copy_{s}_{s}", target, [values])
        return out
    off = _offsets(x, key)
    vals = expand(values, off.shape)
    if off.size:
        x.device.launch(f"scatter_{s}", x.device.grid_1d(off.size, BLOCK), (BLOCK, 1, 1),
                        off.size, I32(bool(accumulate)), out, vals, off)
    return out


def full(shape, value, dtype, index, device=None):
    dtype = np.dtype(dtype)
    out = _new(device, tuple(shape), dtype)
    s = SUFFIX[dtype]
    _launch_ew(f"copy_{s}_{s}", view(out), [bool(value) if dtype == np.dtype(bool) else value])
    return out


def cat(xs, axis):
    shape = list(xs[0].shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    out = _new(xs[0].device, tuple(shape), xs[0].dtype)
    s = SUFFIX[out.dtype]
    st, at = _strides(shape), 0
    for x in xs:
        _launch_ew(f"copy_{s}_{s}", View(out, x.shape, st, at * st[axis]), [x])
        at += x.shape[axis]
    return out


def pad(x, pads, value):
    shape = tuple(n + b + a for n, (b, a) in zip(x.shape, pads))
    out = full(shape, value, x.dtype, x.device.index, x.device)
    st = _strides(shape)
    s = SUFFIX[x.dtype]
    _launch_ew(f"copy_{s}_{s}", View(out, x.shape, st, sum(b * t for (b, _), t in zip(pads, st))), [x])
    return out


def _batched(x: GpuBuffer, batch: tuple) -> tuple[GpuBuffer, int]:
    """``x`` as (prod(batch), rows, cols) contiguous, and its batch stride (0 when it has no batch of its own)."""
    rows, cols = x.shape[-2:]
    if math.prod(x.shape[:-2]) == 1:
        return x, 0
    if tuple(x.shape[:-2]) != batch:
        x = expand(x, batch + (rows, cols))
    return x, rows * cols


def matmul(a, b):
    batch = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    nb = math.prod(batch)
    (a, sa), (b, sb) = _batched(a, batch), _batched(b, batch)
    out = _new(a.device, batch + (m, n), a.dtype)
    if out.size == 0:
        return out
    dev = a.device
    blas = dev.driver.blas  # cuBLAS / rocBLAS where the library opened; else (or for integers) the tiled kernel
    if blas is not None and a.dtype.kind == "f" and k and blas.gemm(dev, a.dtype, nb, m, n, k, a, sa, b, sb, out):
        return out
    p = ffi.new("nx_mm*")
    p.batch, p.m, p.n, p.k, p.sa, p.sb = nb, m, n, k, sa, sb
    grid = (-(-n // TILE), -(-m // TILE), min(nb, dev.limits.max_grid[2]))
    dev.launch(f"matmul_{SUFFIX[a.dtype]}", grid, (TILE, TILE, 1), p, out, a, b)
    return out


def _win(n, c, h, w, kernel_size, stride, padding, dilation, oh, ow):
    p = ffi.new("nx_win*")
    (p.kh, p.kw), (p.sh, p.sw), (p.ph, p.pw), (p.dh, p.dw) = kernel_size, stride, padding, dilation
    p.n, p.c, p.h, p.w, p.oh, p.ow = n, c, h, w, oh, ow
    return p


def _out(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def unfold(x, kernel_size, stride, padding, dilation):
    n, c, h, w = x.shape
    oh, ow = (_out(size, *a) for size, *a in zip((h, w), kernel_size, stride, padding, dilation))
    out = _new(x.device, (n, c * kernel_size[0] * kernel_size[1], oh * ow), x.dtype)
    if out.size:
        x.device.launch(f"unfold_{SUFFIX[x.dtype]}", x.device.grid_1d(out.size, BLOCK), (BLOCK, 1, 1),
                        _win(n, c, h, w, kernel_size, stride, padding, dilation, oh, ow), out, x)
    return out


def fold(cols, output_size, kernel_size, stride, padding, dilation):
    h, w = output_size
    n, c = cols.shape[0], cols.shape[1] // (kernel_size[0] * kernel_size[1])
    oh, ow = (_out(size, *a) for size, *a in zip((h, w), kernel_size, stride, padding, dilation))
    out = _new(cols.device, (n, c, h, w), cols.dtype)
    if out.size:
        cols.device.launch(f"fold_{SUFFIX[cols.dtype]}", cols.device.grid_1d(out.size, BLOCK), (BLOCK, 1, 1),
                           _win(n, c, h, w, kernel_size, stride, padding, dilation, oh, ow), out, cols)
    return out


def make_kernels(device) -> dict:
    """The kernel table of a backend; ``device(index)`` gives its GpuDevice."""
    table = {name: _unary(name) for name in UNARY}
    table.update({name: _binary(name) for name in BINARY})
    table.update({name: _compare(name) for name in COMPARE})
    table.update({name: _reduction(name, op) for name, op in (("sum", 0), ("max", 1), ("min", 2))})
    table.update({name: _argreduction(name, op) for name, op in (("argmax", 0), ("argmin", 1))})
    table.update(
        from_numpy=lambda array, index: device(index).upload(array),
        to_numpy=lambda x: x.device.download(x),
        full=lambda shape, value, dtype, index: full(shape, value, dtype, index, device(index)),
        copy=copy, cast=cast, where=where, reshape=reshape, permute=permute, expand=expand,
        getitem=getitem, index_put=index_put, cat=cat, pad=pad, matmul=matmul, unfold=unfold, fold=fold,
        synchronize=lambda index: device(index).synchronize(),
    )
    return table
