"""Batched matrix products through a vendor BLAS: cuBLAS and rocBLAS take the same strided-batched GEMM
call (handle, op(A), op(B), m, n, k, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc, strideC, batch)
under different names and transpose enums, so one class drives both."""

from __future__ import annotations

import threading
from typing import NamedTuple

import numpy as np

from .errors import GpuError

INT_MAX = 2**31 - 1  # m, n, k, lda, batch are C ints in both libraries (LP64 builds)


class BlasNames(NamedTuple):
    """One library's spelling of the calls and enums the backends use."""

    handle: str         # the handle's C type, as declared in the driver's cdef
    create: str
    set_stream: str
    sgemm: str          # float32 strided-batched GEMM
    dgemm: str          # float64
    op_n: int           # op(X) = X
    op_t: int           # op(X) = X^T


class Blas:
    """A vendor BLAS opened with cffi (``lib`` from ``ffi.dlopen``): one handle per device, bound to the
    device's stream, so GEMMs queue behind the kernels like any launch. A handle must not be used by two host
    threads at once (cuBLAS and rocBLAS say so): calls go through one lock; each only queues work."""

    def __init__(self, ffi, lib, names: BlasNames):
        self.ffi, self.lib, self.names = ffi, lib, names
        self.reason: str | None = None  # why it was given up (handle creation failed): matmul uses the tiled kernel
        self._handles: dict[int, object] = {}
        self.lock = threading.Lock()

    def _handle(self, dev):
        handle = self._handles.get(dev.index)
        if handle is None:
            out = self.ffi.new(f"{self.names.handle}*")
            status = getattr(self.lib, self.names.create)(out)
            if not status:
                status = getattr(self.lib, self.names.set_stream)(out[0], dev.stream)
            if status:
                self.reason = f"{self.names.create}/{self.names.set_stream} failed on {dev.name}: status {status}"
                return None
            handle = self._handles[dev.index] = out[0]
        return handle

    def gemm(self, dev, dtype, batch: int, m: int, n: int, k: int, a, sa: int, b, sb: int, c,
             trans_a: bool = False, trans_b: bool = False) -> bool:
        """Row-major ``c[z] = op(a[z]) @ op(b[z])`` for z < batch, with buffers of (batch of) contiguous
        matrices: ``a`` is m x k (k x m stored when ``trans_a``), ``b`` k x n (n x k when ``trans_b``), ``c``
        m x n; ``sa``, ``sb`` are batch strides in elements (0 repeats one matrix). False when no handle or
        sizes beyond C ints: the caller runs its own kernel.

        The libraries are column-major, and a row-major r x c matrix is the column-major c x r matrix, its
        transpose. So C^T = op(B)^T op(A)^T is computed: B goes first, m and n swap, and each operand's
        leading dimension is its stored row length."""
        if self.reason or max(batch, m, n, k) > INT_MAX:
            return False
        dev.driver.activate(dev.index)
        with self.lock:
            return self._gemm(dev, dtype, batch, m, n, k, a, sa, b, sb, c, trans_a, trans_b)

    def _gemm(self, dev, dtype, batch, m, n, k, a, sa, b, sb, c, trans_a, trans_b) -> bool:
        handle = self._handle(dev)
        if handle is None:
            return False
        ffi, nm = self.ffi, self.names
        ct = "float" if dtype == np.float32 else "double"
        fn = getattr(self.lib, nm.sgemm if ct == "float" else nm.dgemm)
        one, zero = ffi.new(f"{ct}*", 1), ffi.new(f"{ct}*", 0)
        ptr = lambda x: ffi.cast(f"{ct}*", x.ptr)  # noqa: E731
        op = lambda t: nm.op_t if t else nm.op_n  # noqa: E731
        lda, ldb = (m if trans_a else k), (k if trans_b else n)
        args = (handle, op(trans_b), op(trans_a), n, m, k, one, ptr(b), ldb, sb, ptr(a), lda, sa, zero, ptr(c), n,
                m * n, batch)
        self.call(fn, args, f"{nm.sgemm if ct == 'float' else nm.dgemm} failed on {dev.name}",
                  f"(batch {batch}, m {m}, n {n}, k {k})")
        return True

    def call(self, fn, args: tuple, failed: str, detail: str) -> None:
        """``fn(*args)``, one call into the library (the caller holds ``lock``); GpuError ``failed: status s
        detail`` if it fails. Every GEMM goes through here, so a program's runner sees, and repeats, the exact
        call."""
        status = fn(*args)
        if status:
            raise GpuError(f"{failed}: status {status} {detail}")

