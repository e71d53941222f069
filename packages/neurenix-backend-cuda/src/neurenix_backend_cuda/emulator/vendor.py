"""The stand-in libraries: objects with the vendor functions' names and cffi calling conventions (status
codes returned, results written through out-pointers), each a few lines over :class:`Emulator`: libcuda,
NVRTC, libamdhip64 with hiprtc, and the GEMM of cuBLAS and rocBLAS."""

from __future__ import annotations

import operator
import threading

import numpy as np
from cffi import FFI

_ffi = FFI()
OK, INVALID_VALUE, OUT_OF_MEMORY, INVALID_CONFIG, NOT_FOUND, NO_DEVICE = 0, 1, 2, 9, 500, 100
INVALID_CONTEXT, INVALID_DEVICE_FUNCTION = 201, 98  # CUDA_ERROR_INVALID_CONTEXT, hipErrorInvalidDeviceFunction
NAMES = {OK: "SUCCESS", INVALID_VALUE: "INVALID_VALUE", OUT_OF_MEMORY: "OUT_OF_MEMORY", INVALID_CONFIG:
         "INVALID_CONFIGURATION", NOT_FOUND: "NOT_FOUND", NO_DEVICE: "NO_DEVICE", INVALID_CONTEXT: "INVALID_CONTEXT",
         INVALID_DEVICE_FUNCTION: "INVALID_DEVICE_FUNCTION"}


def _int(p) -> int:
    return int(_ffi.cast("uintptr_t", p))


def _str(p) -> str:
    """A ``const char*`` argument: Python bytes, or a cffi pointer."""
    return p.decode() if isinstance(p, bytes) else _ffi.string(_ffi.cast("char*", _int(p))).decode()


class _Program:
    def __init__(self, source: str):
        self.source, self.log, self.image = source, "", b""


class FakeNvrtc:
    """NVRTC: "compiles" by building the source for the host."""

    def __init__(self, emulator, version=(13, 0)):
        self.emu, self.version, self.programs = emulator, version, {}

    def nvrtcVersion(self, major, minor):  # noqa: N802 - the vendor's names
        major[0], minor[0] = self.version
        return OK

    def nvrtcGetNumSupportedArchs(self, n):  # noqa: N802
        n[0] = 3
        return OK

    def nvrtcGetSupportedArchs(self, archs):  # noqa: N802
        archs[0:3] = [75, 80, 90]
        return OK

    def nvrtcCreateProgram(self, prog, source, name, nh, headers, names):  # noqa: N802
        p = _Program(_str(source))
        self.programs[id(p)] = p
        prog[0] = _ffi.cast("void*", id(p))
        return OK

    def _p(self, prog) -> _Program:
        return self.programs[_int(prog)]

    def nvrtcCompileProgram(self, prog, n, opts):  # noqa: N802
        p = self._p(prog)
        ok, p.log, p.image = self.emu.compile(p.source)
        return OK if ok else 6  # NVRTC_ERROR_COMPILATION

    def nvrtcDestroyProgram(self, prog):  # noqa: N802
        self.programs.pop(_int(prog[0]), None)
        return OK

    def nvrtcGetProgramLogSize(self, prog, size):  # noqa: N802
        size[0] = len(self._p(prog).log.encode()) + 1
        return OK

    def nvrtcGetProgramLog(self, prog, out):  # noqa: N802
        log = self._p(prog).log.encode()
        _ffi.memmove(_ffi.cast("char*", _int(out)), log + b"\0", len(log) + 1)
        return OK

    def nvrtcGetCUBINSize(self, prog, size):  # noqa: N802
        size[0] = len(self._p(prog).image)
        return OK

    def nvrtcGetCUBIN(self, prog, out):  # noqa: N802
        image = self._p(prog).image
        _ffi.memmove(_ffi.cast("char*", _int(out)), image, len(image))
        return OK

    nvrtcGetPTXSize, nvrtcGetPTX = nvrtcGetCUBINSize, nvrtcGetCUBIN  # noqa: N815

    def nvrtcGetErrorString(self, status):  # noqa: N802
        self._err = _ffi.new("char[]", b"NVRTC_ERROR_COMPILATION" if status == 6 else b"NVRTC_ERROR")
        return self._err


class FakeCuda:
    """libcuda: devices with the emulator's limits; memory, streams (in order, so synchronous) and launches.

    As the real driver, it keeps the current context per host thread: a call that needs one (memory, copies,
    modules, launches) fails with CUDA_ERROR_INVALID_CONTEXT in a thread that has not made one current, and a
    kernel launches only in the context its module was loaded in."""

    def __init__(self, emulator, version=13000, cc=(8, 0)):
        self.emu, self.version, self.cc, self.modules, self.names = emulator, version, cc, {}, {}
        self.contexts: dict[int, int] = {}  # module or function id -> the context it belongs to
        self.owners: dict[int, int] = {}    # allocation address -> the context that allocated it
        self._thread = threading.local()

    def current(self) -> int:
        """The calling thread's current context (0: none)."""
        return getattr(self._thread, "ctx", 0)

    def cuInit(self, flags):  # noqa: N802
        return OK

    def cuDriverGetVersion(self, v):  # noqa: N802
        v[0] = self.version
        return OK

    def cuDeviceGetCount(self, n):  # noqa: N802
        n[0] = self.emu.devices
        return OK

    def cuDeviceGet(self, dev, index):  # noqa: N802
        if index >= self.emu.devices:
            return INVALID_VALUE
        dev[0] = index
        return OK

    def cuDeviceGetName(self, out, n, dev):  # noqa: N802
        _ffi.memmove(_ffi.cast("char*", _int(out)), f"Emulated GPU {dev} (host CPU)".encode() + b"\0", n)
        return OK

    def cuDeviceGetAttribute(self, out, attr, dev):  # noqa: N802
        e = self.emu
        out[0] = {1: e.max_threads, 2: e.max_threads, 3: e.max_threads, 4: 64, 5: e.max_grid[0], 6: e.max_grid[1],
                  7: e.max_grid[2], 75: self.cc[0], 76: self.cc[1]}[attr]
        return OK

    def cuDeviceTotalMem_v2(self, out, dev):  # noqa: N802
        out[0] = self.emu.capacity
        return OK

    def cuDevicePrimaryCtxRetain(self, ctx, dev):  # noqa: N802
        ctx[0] = _ffi.cast("void*", dev + 1)
        return OK

    def cuCtxSetCurrent(self, ctx):  # noqa: N802
        self._thread.ctx = _int(ctx)
        return OK

    def cuMemAlloc_v2(self, out, size):  # noqa: N802
        if not self.current():
            return INVALID_CONTEXT
        addr = self.emu.alloc(size)
        if addr is None:
            return OUT_OF_MEMORY
        self.owners[addr] = self.current()
        out[0] = addr
        return OK

    def cuMemFree_v2(self, ptr):  # noqa: N802
        if not self.current():
            return INVALID_CONTEXT
        self.emu.free(int(ptr))
        return OK

    def cuMemcpyHtoDAsync_v2(self, dst, src, n, stream):  # noqa: N802
        if not self.current():
            return INVALID_CONTEXT
        self.emu.copy(int(dst), _int(src), n)
        return OK

    def cuMemcpyDtoHAsync_v2(self, dst, src, n, stream):  # noqa: N802
        if not self.current():
            return INVALID_CONTEXT
        self.emu.copy(_int(dst), int(src), n)
        return OK

    def cuStreamCreate(self, out, flags):  # noqa: N802
        if not self.current():
            return INVALID_CONTEXT
        out[0] = _ffi.cast("void*", 1)
        return OK

    def cuStreamSynchronize(self, stream):  # noqa: N802
        return OK if self.current() else INVALID_CONTEXT

    def cuModuleLoadData(self, out, image):  # noqa: N802
        if not self.current():
            return INVALID_CONTEXT
        module = self.emu.load(bytes(image) if isinstance(image, (bytes, bytearray)) else image)
        self.modules[id(module)] = module
        self.contexts[id(module)] = self.current()
        out[0] = _ffi.cast("void*", id(module))
        return OK

    def cuModuleGetFunction(self, out, module, name):  # noqa: N802
        fn = self.emu.function(self.modules[_int(module)], _str(name))
        if fn is None:
            return NOT_FOUND
        self.names[id(fn)] = fn
        self.contexts[id(fn)] = self.contexts[_int(module)]
        out[0] = _ffi.cast("void*", id(fn))
        return OK

    def cuLaunchKernel(self, fn, gx, gy, gz, bx, by, bz, shared, stream, params, extra):  # noqa: N802
        if self.current() != self.contexts[_int(fn)]:
            return INVALID_CONTEXT
        return INVALID_CONFIG if self.emu.launch(self.names[_int(fn)], (gx, gy, gz), (bx, by, bz),
                                                 _int(params)) else OK

    def cuGetErrorName(self, status, out):  # noqa: N802
        self._err = _ffi.new("char[]", f"CUDA_ERROR_{NAMES.get(status, 'UNKNOWN')}".encode())
        out[0] = self._err
        return OK


class FakeHip:
    """libamdhip64 (HIP runtime and hiprtc): the same emulator under HIP's names."""

    def __init__(self, emulator):
        self.cuda, self.rtc = FakeCuda(emulator), FakeNvrtc(emulator)
        self._thread = threading.local()  # hipSetDevice is per host thread; a thread starts on device 0

    def _device(self) -> int:
        return getattr(self._thread, "device", 0)

    def _enter(self) -> None:
        """Make the CUDA stand-in's context that of this thread's current HIP device."""
        self.cuda.cuCtxSetCurrent(self._device() + 1)

    def hipInit(self, flags):  # noqa: N802
        return OK

    def hipGetDeviceCount(self, n):  # noqa: N802
        return self.cuda.cuDeviceGetCount(n)

    def hipDeviceGetName(self, out, n, dev):  # noqa: N802
        return self.cuda.cuDeviceGetName(out, n, dev)

    def hipDeviceGetAttribute(self, out, attr, dev):  # noqa: N802
        e = self.cuda.emu
        out[0] = {56: e.max_threads, 26: e.max_threads, 27: e.max_threads, 28: 64, 29: e.max_grid[0],
                  30: e.max_grid[1], 31: e.max_grid[2]}[attr]
        return OK

    def hipDeviceTotalMem(self, out, dev):  # noqa: N802
        return self.cuda.cuDeviceTotalMem_v2(out, dev)

    def hipSetDevice(self, dev):  # noqa: N802
        if not 0 <= dev < self.cuda.emu.devices:
            return INVALID_VALUE
        self._thread.device = dev
        return OK

    def hipMalloc(self, out, size):  # noqa: N802
        self._enter()
        addr = self.cuda.emu.alloc(size)
        if addr is None:
            return OUT_OF_MEMORY
        out[0] = _ffi.cast("void*", addr)
        return OK

    def hipFree(self, ptr):  # noqa: N802
        self._enter()
        return self.cuda.cuMemFree_v2(_int(ptr))

    def hipMemcpyHtoDAsync(self, dst, src, n, stream):  # noqa: N802
        self._enter()
        return self.cuda.cuMemcpyHtoDAsync_v2(_int(dst), src, n, stream)

    def hipMemcpyDtoHAsync(self, dst, src, n, stream):  # noqa: N802
        self._enter()
        return self.cuda.cuMemcpyDtoHAsync_v2(dst, _int(src), n, stream)

    def hipStreamCreateWithFlags(self, out, flags):  # noqa: N802
        self._enter()
        return self.cuda.cuStreamCreate(out, flags)

    def hipStreamSynchronize(self, stream):  # noqa: N802
        return OK

    def hipModuleLoadData(self, out, image):  # noqa: N802
        self._enter()
        return self.cuda.cuModuleLoadData(out, image)

    def hipModuleGetFunction(self, out, module, name):  # noqa: N802
        return self.cuda.cuModuleGetFunction(out, module, name)

    def hipModuleLaunchKernel(self, fn, gx, gy, gz, bx, by, bz, shared, stream, params, extra):  # noqa: N802
        self._enter()  # a function of a module loaded on another device than this thread's: refused
        status = self.cuda.cuLaunchKernel(fn, gx, gy, gz, bx, by, bz, shared, stream, params, extra)
        return INVALID_DEVICE_FUNCTION if status == INVALID_CONTEXT else status

    def hipGetErrorName(self, status):  # noqa: N802
        self._err = _ffi.new("char[]", f"hipError{NAMES.get(status, 'Unknown').title().replace('_', '')}".encode())
        return self._err

    def hiprtcVersion(self, major, minor):  # noqa: N802
        return self.rtc.nvrtcVersion(major, minor)

    def __getattr__(self, name):  # hiprtcCreateProgram... are NVRTC's calls under another prefix
        if name.startswith("hiprtcGetCode"):
            return getattr(self.rtc, name.replace("hiprtcGetCode", "nvrtcGetCUBIN"))
        if name.startswith("hiprtc"):
            return getattr(self.rtc, "nvrtc" + name[6:])
        raise AttributeError(name)


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


class _FakeBlas:
    """A BLAS's strided-batched GEMM with NumPy over emulated device memory, as the reference BLAS defines
    it: column-major, C[z] = alpha op(A[z]) op(B[z]) + beta C[z] with A[z] at A + z strideA, element (i, j)
    of a matrix at i + j ld; C is not read when beta is 0. Sizes and leading dimensions are checked as the
    library does; a matrix reaching outside its allocation (a GPU's illegal address) fails the call."""

    OP_N = OP_T = INVALID_HANDLE = INVALID_SIZE = INVALID_ENUM = EXECUTION_FAILED = None  # per library

    def __init__(self, emulator):
        self.emu, self.streams, self.calls = emulator, {}, []

    def _create(self, out):
        handle = _ffi.new("char[]", 1)  # a unique address, kept alive here
        self.streams[_int(handle)] = (handle, None)
        out[0] = _ffi.cast("void*", handle)
        return OK

    def _set_stream(self, handle, stream):
        if _int(handle) not in self.streams:
            return self.INVALID_HANDLE
        self.streams[_int(handle)] = (self.streams[_int(handle)][0], _int(stream))
        return OK

    def _gemm(self, name, dtype, *args):
        ctype = "float" if dtype == np.float32 else "double"
        _check_args(name, ctype, args)
        handle, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch = args
        if _int(handle) not in self.streams:
            return self.INVALID_HANDLE
        if ta not in (self.OP_N, self.OP_T) or tb not in (self.OP_N, self.OP_T):
            return self.INVALID_ENUM
        ra, rb = (m if ta == self.OP_N else k), (k if tb == self.OP_N else n)  # rows as stored
        if min(m, n, k, batch) < 0 or lda < max(1, ra) or ldb < max(1, rb) or ldc < max(1, m):
            return self.INVALID_SIZE
        self.calls.append((name, ta, tb, m, n, k, lda, sa, ldb, sb, ldc, sc, batch))
        if m == 0 or n == 0 or batch == 0:
            return OK
        with self.emu.lock:  # on the device's queue, between the kernels queued before and after it
            return self._run_gemm(dtype, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch)

    def _run_gemm(self, dtype, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch):
        (ra, ca), (rb, cb) = ((m, k) if ta == self.OP_N else (k, m)), ((k, n) if tb == self.OP_N else (n, k))
        mats = [self.emu.array(_int(p), dtype, (batch, r, cols), (s, 1, ld))
                for p, r, cols, ld, s in ((a, ra, ca, lda, sa), (b, rb, cb, ldb, sb), (c, m, n, ldc, sc))]
        if any(x is None for x in mats):
            return self.EXECUTION_FAILED
        a, b, out = mats
        if ta == self.OP_T:
            a = a.transpose(0, 2, 1)
        if tb == self.OP_T:
            b = b.transpose(0, 2, 1)
        result = dtype(alpha[0]) * np.matmul(a, b)
        out[...] = result if beta[0] == 0 else result + dtype(beta[0]) * out
        return OK


class FakeCublas(_FakeBlas):
    """libcublas: handles, streams, S/D strided-batched GEMM (cublasOperation_t: N = 0, T = 1)."""

    OP_N, OP_T, INVALID_HANDLE, INVALID_SIZE, INVALID_ENUM, EXECUTION_FAILED = 0, 1, 1, 7, 7, 13  # cublasStatus_t

    def cublasCreate_v2(self, out):  # noqa: N802
        return self._create(out)

    def cublasSetStream_v2(self, handle, stream):  # noqa: N802
        return self._set_stream(handle, stream)

    def cublasSgemmStridedBatched(self, *args):  # noqa: N802
        return self._gemm("cublasSgemmStridedBatched", np.float32, *args)

    def cublasDgemmStridedBatched(self, *args):  # noqa: N802
        return self._gemm("cublasDgemmStridedBatched", np.float64, *args)


class FakeRocblas(_FakeBlas):
    """librocblas: the same calls under rocBLAS's names (rocblas_operation: none = 111, transpose = 112)."""

    # rocblas_status: invalid_handle 1, invalid_size 4, invalid_value 11, internal_error 6
    OP_N, OP_T, INVALID_HANDLE, INVALID_SIZE, INVALID_ENUM, EXECUTION_FAILED = 111, 112, 1, 4, 11, 6

    def rocblas_create_handle(self, out):
        return self._create(out)

    def rocblas_set_stream(self, handle, stream):
        return self._set_stream(handle, stream)

    def rocblas_sgemm_strided_batched(self, *args):
        return self._gemm("rocblas_sgemm_strided_batched", np.float32, *args)

    def rocblas_dgemm_strided_batched(self, *args):
        return self._gemm("rocblas_dgemm_strided_batched", np.float64, *args)
