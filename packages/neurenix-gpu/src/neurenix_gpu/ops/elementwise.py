"""Elementwise kernels: unary math, binary arithmetic, comparisons, where, casts and fills.

Core's contract is relied on, not re-checked: the operands of a binary op or ``where`` are buffers of one
dtype (or a buffer and a Python scalar), their shapes broadcast, unary math gets floats.
"""

from __future__ import annotations

import numpy as np

from ..runtime import GpuBuffer
from .launch import binary, broadcast_shape, elementwise, view

SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64", np.dtype(np.int64): "i64", np.dtype(bool): "b8"}
UNARY = {n: i for i, n in enumerate(("neg", "abs", "sign", "relu", "exp", "log", "sqrt", "sin", "cos", "tanh",
                                     "sigmoid"))}
BINARY = {n: i for i, n in enumerate(("add", "sub", "mul", "div", "pow", "maximum", "minimum"))}
COMPARE = {n: i for i, n in enumerate(("eq", "ne", "lt", "le", "gt", "ge"))}
BOOL = np.dtype(bool)


def _names(kind: str) -> dict:
    """dtype -> the kernel ``kind_<suffix>`` of nx_kernels.cu."""
    return {dtype: f"{kind}_{suffix}" for dtype, suffix in SUFFIX.items()}


def copy_name(src: np.dtype, dst: np.dtype) -> str:
    return f"copy_{SUFFIX[src]}_{SUFFIX[dst]}"


def _binary(name: str):
    op, names = BINARY[name], _names("binary")

    def kernel(a, b):
        dtype = (a if a.__class__ is GpuBuffer else b).dtype
        return binary(names[dtype], op, dtype, a, b)
    kernel.__name__ = name
    return kernel


def _compare(name: str):
    op, names = COMPARE[name], _names("compare")

    def kernel(a, b):
        return binary(names[(a if a.__class__ is GpuBuffer else b).dtype], op, BOOL, a, b)
    kernel.__name__ = name
    return kernel


def _unary(name: str):
    op, names = UNARY[name], _names("unary")

    def kernel(x):
        out = GpuBuffer(x.device, x.shape, x.dtype)
        elementwise(names[x.dtype], out, (x,), op)
        return out
    kernel.__name__ = name
    return kernel


def where(cond, a, b):
    x = a if a.__class__ is GpuBuffer else b
    shape = cond.shape
    for t in (a, b):
        if t.__class__ is GpuBuffer:
            shape = broadcast_shape(shape, t.shape)
    out = GpuBuffer(x.device, shape, x.dtype)
    elementwise(f"where_{SUFFIX[x.dtype]}", out, (cond, a, b))
    return out


def cast(x: GpuBuffer, dtype) -> GpuBuffer:
    dtype = np.dtype(dtype)
    out = GpuBuffer(x.device, x.shape, dtype)
    elementwise(copy_name(x.dtype, dtype), out, (x,))
    return out


def copy_view(v) -> GpuBuffer:
    """A contiguous copy of a strided view."""
    out = GpuBuffer(v.buf.device, v.shape, v.buf.dtype)
    elementwise(copy_name(out.dtype, out.dtype), out, (v,))
    return out


def copy(x: GpuBuffer) -> GpuBuffer:
    return copy_view(view(x))


def full(device, shape, value, dtype) -> GpuBuffer:
    dtype = np.dtype(dtype)
    out = GpuBuffer(device, tuple(shape), dtype)
    elementwise(copy_name(dtype, dtype), out, (bool(value) if dtype == BOOL else value,))
    return out


KERNELS = {
    **{name: _unary(name) for name in UNARY},
    **{name: _binary(name) for name in BINARY},
    **{name: _compare(name) for name in COMPARE},
    "where": where, "cast": cast, "copy": copy,
}
