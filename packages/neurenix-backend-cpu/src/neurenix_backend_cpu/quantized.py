"""int8 inference: quantized linear and conv2d in C (C side: csrc/quantized.h), with the dot-product instructions the
CPU has, chosen at run time (AVX-512 VNNI, aarch64's dotprod) or plain C that the compiler vectorises (generic).
NEURENIX_CPU_INT8=generic forces the generic path (:func:`use_isa` at run time). Layouts and types C does not take,
rows longer than C's int32 sums hold, and grouped convolutions go to core's compositions (:data:`NUMPY`)."""

from __future__ import annotations

import os
import warnings

import numpy as np

from neurenix.backend.kernels import out_size

from .native import F32, NULL, NUMPY, ffi, lib, ndarray, ptr

I8 = np.dtype(np.int8)
MAX_K = 65536  # the longest rows whose sums fit int32 (|sum| <= 255 * 128 * k)


def isa() -> str:
    """The path the int8 kernels take: ``"avx512vnni"``, ``"dotprod"`` or ``"generic"``."""
    return ffi.string(lib.nx_int8_isa()).decode()


def best() -> str:
    """The fastest path this CPU runs (what :func:`isa` reports unless NEURENIX_CPU_INT8 or :func:`use_isa` chose
    another)."""
    return ffi.string(lib.nx_int8_best_isa()).decode()


def use_isa(name: str) -> bool:
    """Take path ``name`` (``"generic"``, or a faster one this CPU runs; ``"auto"``: the best); False, changing
    nothing, where the CPU cannot run it."""
    return bool(lib.nx_int8_use(name.encode()))


if lib is not None and os.environ.get("NEURENIX_CPU_INT8") and not use_isa(os.environ["NEURENIX_CPU_INT8"]):
    warnings.warn(f"NEURENIX_CPU_INT8={os.environ['NEURENIX_CPU_INT8']!r} names no int8 path this CPU runs (it runs "
                  f"'generic' and {best()!r}): the int8 kernels take {isa()!r}", RuntimeWarning, stacklevel=1)


def _c_operands(x, wq, w_scale, bias) -> bool:
    """Whether C takes these: C-contiguous float32 x and scales (and bias), int8 weights."""
    return (lib is not None and type(x) is ndarray and x.dtype is F32 and x.flags.c_contiguous
            and type(wq) is ndarray and wq.dtype is I8 and wq.flags.c_contiguous
            and type(w_scale) is ndarray and w_scale.dtype is F32 and w_scale.flags.c_contiguous
            and (bias is None or (type(bias) is ndarray and bias.dtype is F32 and bias.flags.c_contiguous)))


def quantized_linear(x, wq, w_scale, bias, x_scale, x_zero_point):
    """``x`` (..., in) quantized per tensor, times int8 ``wq`` (out, in) in exact integer sums, dequantized with
    ``x_scale * w_scale`` plus ``bias``: (..., out) float32 (core's contract)."""
    n_out, n_in = wq.shape
    if not _c_operands(x, wq, w_scale, bias) or not 0 < n_in <= MAX_K or n_out == 0:
        return NUMPY.quantized_linear(x, wq, w_scale, bias, x_scale, x_zero_point)
    y = np.empty((*x.shape[:-1], n_out), F32)
    if y.size and lib.nx_qlinear(ptr(x), ptr(wq), ptr(w_scale), NULL if bias is None else ptr(bias), ptr(y),
                                 x.size // n_in, n_in, n_out, x_scale, x_zero_point):
        raise MemoryError(f"quantized_linear: no memory for the quantized rows of an input of {x.shape}")
    return y


def quantized_conv2d(x, wq, w_scale, bias, x_scale, x_zero_point, stride, padding, dilation, groups):
    """conv2d of ``x`` (N, C, H, W) quantized per tensor with int8 ``wq`` (O, C, kh, kw) in exact integer sums
    (padding adds 0), dequantized as :func:`quantized_linear`: (N, O, OH, OW) float32. groups 1 in C."""
    if groups != 1 or x.ndim != 4 or not _c_operands(x, wq, w_scale, bias) or \
            not 0 < wq[0].size <= MAX_K or wq.shape[1] != x.shape[1]:
        return NUMPY.quantized_conv2d(x, wq, w_scale, bias, x_scale, x_zero_point, stride, padding, dilation, groups)
    (n, c, h, w), (o, _, kh, kw) = x.shape, wq.shape
    oh, ow = out_size(h, kh, stride[0], padding[0], dilation[0]), out_size(w, kw, stride[1], padding[1], dilation[1])
    y = np.empty((n, o, max(oh, 0), max(ow, 0)), F32)
    if y.size and lib.nx_qconv2d(ptr(x), ptr(wq), ptr(w_scale), NULL if bias is None else ptr(bias), ptr(y), n, c, h,
                                 w, o, kh, kw, *stride, *padding, *dilation, oh, ow, x_scale, x_zero_point):
        raise MemoryError(f"quantized_conv2d: no memory for the quantized columns of an input of {x.shape}")
    return y
