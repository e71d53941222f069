"""A BLAS library's strided-batched GEMM over emulated device memory, computed with NumPy, as cuBLAS and rocBLAS
define it. Each vendor's tests make a :class:`Gemm` with the vendor's names (the backend's ``BlasNames``) and
status values (:class:`Codes`)."""

from __future__ import annotations

import functools
import operator
from typing import NamedTuple

import numpy as np
from cffi import FFI

from ...blas import BlasNames
from . import address

_ffi = FFI()


class Codes(NamedTuple):
    """The statuses the stand-in returns, as the library's enum has them."""

    success: int
    invalid_handle: int     # a handle that was never created
    invalid_size: int       # a size or leading dimension out of range
    invalid_enum: int       # an unknown transpose operation
    execution_failed: int   # a matrix reaching outside its allocation (a GPU's illegal address)


# The strided-batched GEMM's parameters, as cuBLAS and rocBLAS declare them ("T*": float* or double*)
_GEMM = ("handle", "int", "int", "int", "int", "int", "T*", "T*", "int", "int64", "T*", "int", "int64", "T*", "T*",
         "int", "int64", "int")
_RANGE = {"int": (-2**31, 2**31), "int64": (-2**63, 2**63)}


def _check_args(name: str, ctype: str, args: tuple) -> None:
    """What cffi's conversion would refuse when calling the real library: a wrong count, a pointer of the
    other precision, an integer out of its C type's range."""
    if len(args) != len(_GEMM):
        raise TypeError(f"{name} expected {len(_GEMM)} arguments, got {len(args)}")
    for i, (kind, a) in enumerate(zip(_GEMM, args)):
        if kind in _RANGE:
            lo, hi = _RANGE[kind]
            if not lo <= operator.index(a) < hi:
                raise OverflowError(f"{name} argument {i}: {a} does not fit a C {kind}")
        elif not isinstance(a, _ffi.CData) or _ffi.typeof(a).kind != "pointer" or \
                (kind == "T*" and _ffi.typeof(a).item.cname != ctype):
            raise TypeError(f"{name} argument {i}: expected {kind.replace('T', ctype)}, got {a!r}")


class Gemm:
    """A BLAS's strided-batched GEMM with NumPy over emulated device memory, as the reference BLAS defines
    it: column-major, C[z] = alpha op(A[z]) op(B[z]) + beta C[z] with A[z] at A + z strideA, element (i, j)
    of a matrix at i + j ld; C is not read when beta is 0. Sizes and leading dimensions are checked as the
    library does; a matrix reaching outside its allocation (a GPU's illegal address) fails the call."""

    def __init__(self, emulator, names: BlasNames, codes: Codes):
        self.emu, self.names, self.codes, self.streams, self.calls = emulator, names, codes, {}, []
        self.op_n, self.op_t = names.op_n, names.op_t
        self._calls = {names.create: self.create, names.set_stream: self.set_stream,
                       names.sgemm: functools.partial(self.gemm, names.sgemm, np.float32),
                       names.dgemm: functools.partial(self.gemm, names.dgemm, np.float64)}

    def __getattr__(self, name: str):
        """The library's call ``name`` (only attributes not found otherwise come here)."""
        try:
            return self.__dict__["_calls"][name]
        except KeyError:
            raise AttributeError(name) from None

    def create(self, out):
        handle = _ffi.new("char[]", 1)  # a unique address, kept alive here
        self.streams[address(handle)] = (handle, None)
        out[0] = _ffi.cast("void*", handle)
        return self.codes.success

    def set_stream(self, handle, stream):
        if address(handle) not in self.streams:
            return self.codes.invalid_handle
        self.streams[address(handle)] = (self.streams[address(handle)][0], address(stream))
        return self.codes.success

    def gemm(self, name: str, dtype, *args):
        """The call ``name`` (S or D precision: ``dtype``) with the library's 18 arguments."""
        ctype = "float" if dtype == np.float32 else "double"
        _check_args(name, ctype, args)
        handle, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch = args
        codes = self.codes
        if address(handle) not in self.streams:
            return codes.invalid_handle
        if ta not in (self.op_n, self.op_t) or tb not in (self.op_n, self.op_t):
            return codes.invalid_enum
        ra, rb = (m if ta == self.op_n else k), (k if tb == self.op_n else n)  # rows as stored
        if min(m, n, k, batch) < 0 or lda < max(1, ra) or ldb < max(1, rb) or ldc < max(1, m):
            return codes.invalid_size
        self.calls.append((name, ta, tb, m, n, k, lda, sa, ldb, sb, ldc, sc, batch))
        if m == 0 or n == 0 or batch == 0:
            return codes.success
        with self.emu.lock:  # on the device's queue, between the kernels queued before and after it
            return self._run_gemm(dtype, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch)

    def _run_gemm(self, dtype, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch):
        codes = self.codes
        (ra, ca), (rb, cb) = ((m, k) if ta == self.op_n else (k, m)), ((k, n) if tb == self.op_n else (n, k))
        mats = [self.emu.array(address(p), dtype, (batch, r, cols), (s, 1, ld))
                for p, r, cols, ld, s in ((a, ra, ca, lda, sa), (b, rb, cb, ldb, sb), (c, m, n, ldc, sc))]
        if any(x is None for x in mats):
            return codes.execution_failed
        a, b, out = mats
        if ta == self.op_t:
            a = a.transpose(0, 2, 1)
        if tb == self.op_t:
            b = b.transpose(0, 2, 1)
        result = dtype(alpha[0]) * np.matmul(a, b)
        out[...] = result if beta[0] == 0 else result + dtype(beta[0]) * out
        return codes.success
