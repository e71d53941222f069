"""Elementwise launches: views, the geometry struct, and plans.

An elementwise kernel (``unary_*``, ``binary_*``, ``compare_*``, ``where_*``, ``copy_*``) writes one strided
operand and reads up to three, all described by one ``nx_geo`` struct. Working that struct out (broadcast
strides, the grid, the limits check) happens once per device, kernel and operand layout: it is kept as a
:class:`Plan` in ``device.plans``, so that an op on shapes seen before only allocates its output and fills in
pointers. A plan's struct is never written after it is made (a launch copies its parameters), so threads
share it. Core has already promoted dtypes and checked that shapes broadcast: nothing here does it again.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ..runtime import GpuBuffer, GpuDevice
from ..source import BLOCK, MAXDIM, ffi

BLOCK_1D = (BLOCK, 1, 1)
OPS = tuple(ffi.new("int*", i) for i in range(16))  # op codes as kernel arguments: shared, never written
PARAMS, PTRS, _GEO = ffi.typeof("void*[]"), ffi.typeof("unsigned long long[]"), ffi.typeof("nx_geo*")
_PLAN_LIMIT = 4096  # plans per device; endless new shapes start the cache over


class View(NamedTuple):
    """A strided window on a buffer: how one kernel broadcasts, permutes, slices, and writes into part of
    an output (pad, cat, index_put)."""

    buf: GpuBuffer
    shape: tuple
    strides: tuple   # elements
    offset: int = 0


def contiguous_strides(shape: tuple) -> tuple:
    out, s = [], 1
    for d in reversed(shape):
        out.append(s)
        s *= d
    return tuple(reversed(out))


def view(buf: GpuBuffer) -> View:
    return View(buf, buf.shape, contiguous_strides(buf.shape))


def broadcast_strides(shape: tuple, strides: tuple, to: tuple) -> tuple:
    """``strides`` of an operand of ``shape`` aligned to ``to`` (stride 0 along broadcast axes)."""
    pad = len(to) - len(shape)
    return (0,) * pad + tuple(0 if d == 1 and n != 1 else s for d, n, s in zip(shape, to[pad:], strides))


_broadcast: dict = {}


def broadcast_shape(a: tuple, b: tuple) -> tuple:
    """NumPy's broadcast of two shapes that core has checked broadcast."""
    out = _broadcast.get((a, b))
    if out is None:
        n = max(len(a), len(b))
        pa, pb = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
        if len(_broadcast) >= _PLAN_LIMIT:
            _broadcast.clear()
        out = _broadcast[(a, b)] = tuple(y if x == 1 else x for x, y in zip(pa, pb))
    return out


class Plan(NamedTuple):
    """What a launch of one kernel on one operand layout needs besides the buffers' addresses."""

    fn: object      # the kernel function on the device; None when the output is empty (nothing to launch)
    grid: tuple
    block: tuple
    struct: object  # the kernel's parameter struct (nx_geo*, nx_red*...): shapes, strides, offsets
    shape: tuple    # the output's


def remember(dev: GpuDevice, key: tuple, plan: Plan) -> Plan:
    """Keep ``plan`` in the device's plans (bounded: endless new shapes start them over)."""
    if len(dev.plans) >= _PLAN_LIMIT:
        dev.plans.clear()
    dev.plans[key] = plan
    return plan


def _layout(x) -> tuple | None:
    """(shape, strides, offset) of an operand; None for a scalar."""
    if x.__class__ is GpuBuffer:
        return x.shape, contiguous_strides(x.shape), 0
    if x.__class__ is View:
        return x.shape, x.strides, x.offset
    return None


def _plan(dev: GpuDevice, key: tuple, kernel: str, shape: tuple, layouts: tuple) -> Plan:
    """Make and keep the plan of ``kernel`` writing ``shape``; ``layouts``: the operands' (output first)."""
    if len(shape) > MAXDIM:
        raise ValueError(f"{kernel}: tensors of more than {MAXDIM} dimensions are not supported (shape {shape})")
    n = math.prod(shape)
    geo = ffi.new(_GEO)
    geo.n, geo.ndim = n, len(shape)
    geo.shape[0:len(shape)] = list(shape)
    for k, layout in enumerate(layouts):
        if layout is not None:
            geo.stride[k][0:len(shape)] = list(broadcast_strides(layout[0], layout[1], shape))
            geo.offset[k] = layout[2]
    fn, grid = None, dev.grid_1d(n, BLOCK)
    if n:
        dev.check_launch(kernel, grid, BLOCK_1D)
        fn = dev.function(kernel)
    return remember(dev, key, Plan(fn, grid, BLOCK_1D, geo, shape))


def binary(kernel: str, op: int, dtype, a, b) -> GpuBuffer:
    """The per-op path of ``binary_*`` and ``compare_*``: ``a`` and ``b`` buffers of one dtype (or one of them
    a Python scalar), writing a new ``dtype`` buffer of their broadcast shape."""
    if a.__class__ is not GpuBuffer or b.__class__ is not GpuBuffer:
        x = a if a.__class__ is GpuBuffer else b
        out = GpuBuffer(x.device, x.shape, dtype)
        elementwise(kernel, out, (a, b), op)
        return out
    shape = a.shape if a.shape == b.shape else _broadcast.get((a.shape, b.shape)) or broadcast_shape(a.shape, b.shape)
    dev = a.device
    key = (kernel, shape, a.shape, b.shape)
    plan = dev.plans.get(key) or _plan(dev, key, kernel, shape, ((shape, contiguous_strides(shape), 0), _layout(a),
                                                                 _layout(b)))
    out = GpuBuffer(dev, shape, dtype)
    if plan.fn is not None:
        ptrs = ffi.new(PTRS, (out.ptr, a.ptr, b.ptr))
        dev.run(plan.fn, plan.grid, BLOCK_1D, ffi.new(PARAMS, (plan.struct, OPS[op], ptrs, ptrs + 1, ptrs + 2)))
    return out


def elementwise(kernel: str, out, ins: tuple, op: int | None = None) -> None:
    """Launch ``kernel`` writing ``out`` (a buffer or a view) from ``ins``: buffers, views or Python scalars
    (a scalar goes in the struct, its pointer null), broadcast to ``out``'s shape; ``op`` selects the
    operation of a ``unary_``, ``binary_`` or ``compare_`` kernel."""
    operands = (out, *ins)
    key, ptrs, scalars = [kernel], [], []
    for k, x in enumerate(operands):
        if x.__class__ is GpuBuffer:
            key.append(x.shape)
            ptrs.append(x.ptr)
        elif x.__class__ is View:
            key.append((x.shape, x.strides, x.offset))
            ptrs.append(x.buf.ptr)
        else:
            key.append(None)
            ptrs.append(0)
            scalars.append((k, x))
    key = tuple(key)
    dev = (out.buf if out.__class__ is View else out).device
    plan = dev.plans.get(key) or _plan(dev, key, kernel, out.shape, tuple(_layout(x) for x in operands))
    if plan.fn is None:
        return
    geo = plan.struct
    if scalars:  # the plan's struct is shared: a copy carries the values
        geo = ffi.new(_GEO, geo[0])
        for k, v in scalars:
            # a float scalar beyond int64 (2.0 ** 63) has no integer slot: float kernels read fscal alone
            geo.fscal[k], geo.iscal[k] = float(v), int(v) if math.isfinite(v) and -2**63 <= v < 2**63 else 0
    values = ffi.new(PTRS, ptrs)
    params = [geo] if op is None else [geo, OPS[op]]
    for k in range(len(ptrs)):  # a loop, not a generator: no Python frame per operand
        params.append(values + k)
    dev.run(plan.fn, plan.grid, BLOCK_1D, ffi.new(PARAMS, params))


def launch_1d(kernel: str, out: GpuBuffer, *args) -> GpuBuffer:
    """``kernel`` with one thread per element of ``out`` (grid-stride), unless ``out`` is empty; ``out``."""
    if out.size:
        dev = out.device
        dev.launch(kernel, dev.grid_1d(out.size, BLOCK), BLOCK_1D, *args)
    return out
