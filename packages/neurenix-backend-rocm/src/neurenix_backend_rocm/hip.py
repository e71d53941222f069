"""The HIP runtime and hiprtc through cffi in ABI mode (``libamdhip64`` opened at run time), shaped as the
driver that neurenix_backend_cuda's GPU runtime calls: the same kernel source, the same host code."""

from __future__ import annotations

import re
import threading

import numpy as np
from cffi import FFI
from neurenix_backend_cuda.gpu import CompileError, GpuError, OutOfMemoryError, dlopen_first
from neurenix_backend_cuda.gpu import ffi as _structs
from neurenix_backend_cuda.gpu.blas import Blas, BlasNames
from neurenix_backend_cuda.gpu.runtime import Limits

ffi = FFI()
ffi.include(_structs)
ffi.cdef("""
typedef int hipError_t; typedef struct ihipModule_t* hipModule_t; typedef struct ihipModuleSymbol_t* hipFunction_t;
typedef struct ihipStream_t* hipStream_t;
hipError_t hipInit(unsigned); hipError_t hipDriverGetVersion(int*); hipError_t hipGetDeviceCount(int*);
hipError_t hipDeviceGetName(char*, int, int); hipError_t hipDeviceGetAttribute(int*, int, int);
hipError_t hipDeviceTotalMem(size_t*, int); hipError_t hipSetDevice(int);
hipError_t hipMalloc(void**, size_t); hipError_t hipFree(void*);
hipError_t hipMemcpyHtoDAsync(void*, const void*, size_t, hipStream_t);
hipError_t hipMemcpyDtoHAsync(void*, void*, size_t, hipStream_t);
hipError_t hipStreamCreateWithFlags(hipStream_t*, unsigned); hipError_t hipStreamSynchronize(hipStream_t);
hipError_t hipModuleLoadData(hipModule_t*, const void*);
hipError_t hipModuleGetFunction(hipFunction_t*, hipModule_t, const char*);
hipError_t hipModuleLaunchKernel(hipFunction_t, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                                 hipStream_t, void**, void**);
const char* hipGetErrorName(hipError_t);

typedef struct _hiprtcProgram* hiprtcProgram;
int hiprtcVersion(int*, int*);
int hiprtcCreateProgram(hiprtcProgram*, const char*, const char*, int, const char**, const char**);
int hiprtcCompileProgram(hiprtcProgram, int, const char**); int hiprtcDestroyProgram(hiprtcProgram*);
int hiprtcGetProgramLogSize(hiprtcProgram, size_t*); int hiprtcGetProgramLog(hiprtcProgram, char*);
int hiprtcGetCodeSize(hiprtcProgram, size_t*); int hiprtcGetCode(hiprtcProgram, char*);
const char* hiprtcGetErrorString(int);

typedef struct _rocblas_handle* rocblas_handle; typedef int rocblas_status;
rocblas_status rocblas_create_handle(rocblas_handle*); rocblas_status rocblas_set_stream(rocblas_handle, hipStream_t);
rocblas_status rocblas_sgemm_strided_batched(rocblas_handle, int, int, int, int, int, const float*, const float*, int,
                                             int64_t, const float*, int, int64_t, const float*, float*, int, int64_t,
                                             int);
rocblas_status rocblas_dgemm_strided_batched(rocblas_handle, int, int, int, int, int, const double*, const double*,
                                             int, int64_t, const double*, int, int64_t, const double*, double*, int,
                                             int64_t, int);
""")

HIP_ERROR_OUT_OF_MEMORY, HIP_ERROR_NO_DEVICE = 2, 100
# rocblas_operation (rocblas-types.h, unchanged from rocBLAS 2.x of 2019 through ROCm 6: CBLAS's numbering):
# rocblas_operation_none = 111, rocblas_operation_transpose = 112. rocblas_int is int32 (not the ILP64
# build), rocblas_stride int64; rocblas_status_success = 0.
ROCBLAS = BlasNames("rocblas_handle", "rocblas_create_handle", "rocblas_set_stream", "rocblas_sgemm_strided_batched",
                    "rocblas_dgemm_strided_batched", 111, 112)
# hipDeviceAttribute_t (ROCm 5 and 6): max block dim x/y/z, max grid dim x/y/z, max threads per block
ATTR_BLOCK, ATTR_GRID, ATTR_MAX_THREADS = (26, 27, 28), (29, 30, 31), 56


def open_hip():
    """libamdhip64 (hiprtc is inside it up to ROCm 5; ROCm 6 ships libhiprtc beside it)."""
    return dlopen_first(ffi, ["libamdhip64.so", "libamdhip64.so.6", "libamdhip64.so.5"],
                        "no HIP runtime (libamdhip64.so not found)")


def open_hiprtc(hip):
    return dlopen_first(ffi, ["libhiprtc.so", "libhiprtc.so.6"]) or hip


def open_rocblas():
    """librocblas (ROCm 6: .so.4, ROCm 5: .so.0), or None: matmul then runs the tiled kernel."""
    return dlopen_first(ffi, ["librocblas.so", "librocblas.so.4", "librocblas.so.0"])


class HiprtcCompiler:
    """HIP C++ to a code object for one ``gfx...`` target (``native``: the current device's) with hiprtc."""

    def __init__(self, lib):
        self.lib = lib
        major, minor = ffi.new("int*"), ffi.new("int*")
        lib.hiprtcVersion(major, minor)
        self.version = f"hiprtc{major[0]}.{minor[0]}"

    def compile(self, source: str, arch: str) -> bytes:
        lib = self.lib
        prog = ffi.new("hiprtcProgram*")
        if lib.hiprtcCreateProgram(prog, source.encode(), b"nx_kernels.cu", 0, ffi.NULL, ffi.NULL):
            raise CompileError("hiprtcCreateProgram failed")
        try:
            opts = [ffi.new("char[]", b"-std=c++17")]
            if not arch.startswith("native"):
                opts.append(ffi.new("char[]", f"--offload-arch={arch}".encode()))
            status = lib.hiprtcCompileProgram(prog[0], len(opts), ffi.new("char*[]", opts))
            size = ffi.new("size_t*")
            lib.hiprtcGetProgramLogSize(prog[0], size)
            log = ffi.new("char[]", size[0] + 1)
            lib.hiprtcGetProgramLog(prog[0], log)
            if status:
                raise CompileError(f"hiprtc ({self.version}) could not compile nx_kernels.cu for {arch} "
                                   f"({ffi.string(lib.hiprtcGetErrorString(status)).decode()}):\n"
                                   f"{ffi.string(log).decode(errors='replace')}")
            lib.hiprtcGetCodeSize(prog[0], size)
            code = ffi.new("char[]", size[0])
            lib.hiprtcGetCode(prog[0], code)
            return bytes(ffi.buffer(code, size[0]))
        finally:
            lib.hiprtcDestroyProgram(prog)


class HipDriver:
    """The HIP runtime as the GPU runtime needs it (``hip``, ``hiprtc``, ``rocblas``: opened libraries)."""

    name = "rocm"

    def __init__(self, hip, hiprtc, rocblas=None):
        self.lib, self.compiler = hip, HiprtcCompiler(hiprtc)
        self.blas = Blas(ffi, rocblas, ROCBLAS) if rocblas is not None else None
        status = hip.hipInit(0)
        if status in (HIP_ERROR_NO_DEVICE, HIP_ERROR_NO_DEVICE + 1):  # hipErrorNoDevice, hipErrorInvalidDevice
            raise GpuError(f"no HIP device ({ffi.string(hip.hipGetErrorName(status)).decode()})")
        self._check(status, "hipInit")
        self._thread = threading.local()  # hipSetDevice is per host thread: so is what we know of it

    def _check(self, status: int, call: str, detail: str = "") -> None:
        if status:
            exc = OutOfMemoryError if status == HIP_ERROR_OUT_OF_MEMORY else GpuError
            raise exc(f"{call} failed: {ffi.string(self.lib.hipGetErrorName(status)).decode()}{detail}")

    def _get(self, call: str, ctype: str, *args):
        out = ffi.new(ctype)
        self._check(getattr(self.lib, call)(out, *args), call)
        return out[0]

    def device_count(self) -> int:
        n = ffi.new("int*")
        status = self.lib.hipGetDeviceCount(n)
        if status == HIP_ERROR_NO_DEVICE:
            raise GpuError("no HIP device (hipErrorNoDevice)")
        self._check(status, "hipGetDeviceCount")
        return n[0]

    def device_name(self, index: int) -> str:
        name = ffi.new("char[]", 256)
        self._check(self.lib.hipDeviceGetName(name, 256, index), "hipDeviceGetName")
        return f"{ffi.string(name).decode()} ({self.compiler.version})"

    def arch(self, index: int) -> str:
        # hiprtc without --offload-arch targets the current device; the name keys the disk cache
        return "native-" + re.sub(r"[^A-Za-z0-9]+", "_", self.device_name(index))

    def limits(self, index: int) -> Limits:
        attr = lambda a: self._get("hipDeviceGetAttribute", "int*", a, index)  # noqa: E731
        return Limits(attr(ATTR_MAX_THREADS), tuple(map(attr, ATTR_BLOCK)), tuple(map(attr, ATTR_GRID)),
                      self._get("hipDeviceTotalMem", "size_t*", index))

    def activate(self, index: int) -> None:
        """Make device ``index`` current in the calling thread (a new thread starts on device 0)."""
        if getattr(self._thread, "current", None) != index:
            self._check(self.lib.hipSetDevice(index), "hipSetDevice")
            self._thread.current = index

    def alloc(self, nbytes: int) -> int:
        out = ffi.new("void**")
        self._check(self.lib.hipMalloc(out, nbytes), "hipMalloc", f" ({nbytes} bytes)")
        return int(ffi.cast("uintptr_t", out[0]))

    def free(self, ptr: int) -> None:
        self._check(self.lib.hipFree(ffi.cast("void*", ptr)), "hipFree")

    def stream(self):
        return self._get("hipStreamCreateWithFlags", "hipStream_t*", 1)  # non-blocking

    def htod(self, ptr: int, array: np.ndarray, stream) -> None:
        self._check(self.lib.hipMemcpyHtoDAsync(ffi.cast("void*", ptr), ffi.from_buffer(array), array.nbytes, stream),
                    "hipMemcpyHtoD")

    def dtoh(self, array: np.ndarray, ptr: int, stream) -> None:
        self._check(self.lib.hipMemcpyDtoHAsync(ffi.from_buffer(array), ffi.cast("void*", ptr), array.nbytes, stream),
                    "hipMemcpyDtoH")
        self.sync(stream)

    def sync(self, stream) -> None:
        self._check(self.lib.hipStreamSynchronize(stream), "hipStreamSynchronize")

    def load(self, image: bytes):
        return self._get("hipModuleLoadData", "hipModule_t*", image)

    def function(self, module, name: str):
        fn = ffi.new("hipFunction_t*")
        self._check(self.lib.hipModuleGetFunction(fn, module, name.encode()), "hipModuleGetFunction", f" ({name})")
        return fn[0]

    def launch(self, fn, grid, block, params, stream) -> None:
        self._check(self.lib.hipModuleLaunchKernel(fn, *grid, *block, 0, stream, ffi.cast("void**", params),
                                                   ffi.NULL), "hipModuleLaunchKernel", f" (grid {grid}, block {block})")
