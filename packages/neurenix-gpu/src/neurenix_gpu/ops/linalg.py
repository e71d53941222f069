"""Batched matmul (through the vendor BLAS where it opened, else the tiled kernel) and unfold/fold, on which
core builds convolution and pooling."""

from __future__ import annotations

import math

from neurenix.backend.kernels import out_size

from ..runtime import GpuBuffer
from ..source import TILE, ffi
from .elementwise import SUFFIX
from .launch import broadcast_shape, launch_1d
from .movement import expand


def _batched(x: GpuBuffer, batch: tuple) -> tuple[GpuBuffer, int]:
    """``x`` as (prod(batch), rows, cols) contiguous, and its batch stride (0 when it has no batch of its own)."""
    rows, cols = x.shape[-2:]
    if math.prod(x.shape[:-2]) == 1:
        return x, 0
    if tuple(x.shape[:-2]) != batch:
        x = expand(x, batch + (rows, cols))
    return x, rows * cols


def matmul(a, b):
    batch = broadcast_shape(a.shape[:-2], b.shape[:-2])
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    nb = math.prod(batch)
    (a, sa), (b, sb) = _batched(a, batch), _batched(b, batch)
    out = GpuBuffer(a.device, batch + (m, n), a.dtype)
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


def _window(n, c, h, w, kernel_size, stride, padding, dilation):
    """The ``nx_win`` struct of unfold/fold, and the output size (oh, ow)."""
    oh, ow = (out_size(size, *a) for size, *a in zip((h, w), kernel_size, stride, padding, dilation))
    p = ffi.new("nx_win*")
    (p.kh, p.kw), (p.sh, p.sw), (p.ph, p.pw), (p.dh, p.dw) = kernel_size, stride, padding, dilation
    p.n, p.c, p.h, p.w, p.oh, p.ow = n, c, h, w, oh, ow
    return p, oh * ow


def unfold(x, kernel_size, stride, padding, dilation):
    n, c, h, w = x.shape
    p, blocks = _window(n, c, h, w, kernel_size, stride, padding, dilation)
    out = GpuBuffer(x.device, (n, c * kernel_size[0] * kernel_size[1], blocks), x.dtype)
    return launch_1d(f"unfold_{SUFFIX[x.dtype]}", out, p, out, x)


def fold(cols, output_size, kernel_size, stride, padding, dilation):
    (h, w), n = output_size, cols.shape[0]
    c = cols.shape[1] // (kernel_size[0] * kernel_size[1])
    p, _ = _window(n, c, h, w, kernel_size, stride, padding, dilation)
    out = GpuBuffer(cols.device, (n, c, h, w), cols.dtype)
    return launch_1d(f"fold_{SUFFIX[cols.dtype]}", out, p, out, cols)


KERNELS = {"matmul": matmul, "unfold": unfold, "fold": fold}
