"""The CUDA driver API, NVRTC and cuBLAS through cffi in ABI mode: libraries opened at run time, so no CUDA
is needed to install this package. ``CudaDriver`` is what the GPU runtime calls; each method is one
vendor call deep, which is what lets tests put the emulator's stand-in libraries underneath."""

from __future__ import annotations

import glob
import os
import threading

import numpy as np
from cffi import FFI

from .gpu import CompileError, GpuError, OutOfMemoryError, dlopen_first
from .gpu import ffi as _structs
from .gpu.blas import Blas, BlasNames
from .gpu.runtime import Limits

ffi = FFI()
ffi.include(_structs)
ffi.cdef("""
typedef int CUresult; typedef int CUdevice; typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st* CUcontext; typedef struct CUmod_st* CUmodule; typedef struct CUfunc_st* CUfunction;
typedef struct CUstream_st* CUstream;
CUresult cuInit(unsigned); CUresult cuDriverGetVersion(int*); CUresult cuDeviceGetCount(int*);
CUresult cuDeviceGet(CUdevice*, int); CUresult cuDeviceGetName(char*, int, CUdevice);
CUresult cuDeviceGetAttribute(int*, int, CUdevice); CUresult cuDeviceTotalMem_v2(size_t*, CUdevice);
CUresult cuDevicePrimaryCtxRetain(CUcontext*, CUdevice); CUresult cuCtxSetCurrent(CUcontext);
CUresult cuMemAlloc_v2(CUdeviceptr*, size_t); CUresult cuMemFree_v2(CUdeviceptr);
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr, const void*, size_t, CUstream);
CUresult cuMemcpyDtoHAsync_v2(void*, CUdeviceptr, size_t, CUstream);
CUresult cuStreamCreate(CUstream*, unsigned); CUresult cuStreamSynchronize(CUstream);
CUresult cuModuleLoadData(CUmodule*, const void*); CUresult cuModuleGetFunction(CUfunction*, CUmodule, const char*);
CUresult cuLaunchKernel(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream,
                        void**, void**);
CUresult cuGetErrorName(CUresult, const char**);

typedef struct _nvrtcProgram* nvrtcProgram;
int nvrtcVersion(int*, int*); int nvrtcGetNumSupportedArchs(int*); int nvrtcGetSupportedArchs(int*);
int nvrtcCreateProgram(nvrtcProgram*, const char*, const char*, int, const char* const*, const char* const*);
int nvrtcCompileProgram(nvrtcProgram, int, const char* const*); int nvrtcDestroyProgram(nvrtcProgram*);
int nvrtcGetProgramLogSize(nvrtcProgram, size_t*); int nvrtcGetProgramLog(nvrtcProgram, char*);
int nvrtcGetCUBINSize(nvrtcProgram, size_t*); int nvrtcGetCUBIN(nvrtcProgram, char*);
int nvrtcGetPTXSize(nvrtcProgram, size_t*); int nvrtcGetPTX(nvrtcProgram, char*);
const char* nvrtcGetErrorString(int);

typedef struct cublasContext* cublasHandle_t;
int cublasCreate_v2(cublasHandle_t*); int cublasSetStream_v2(cublasHandle_t, CUstream);
int cublasSgemmStridedBatched(cublasHandle_t, int, int, int, int, int, const float*, const float*, int, long long,
                              const float*, int, long long, const float*, float*, int, long long, int);
int cublasDgemmStridedBatched(cublasHandle_t, int, int, int, int, int, const double*, const double*, int, long long,
                              const double*, int, long long, const double*, double*, int, long long, int);
""")

CUDA_ERROR_OUT_OF_MEMORY = 2
# cublasOperation_t (cublas_api.h): CUBLAS_OP_N = 0, CUBLAS_OP_T = 1
CUBLAS = BlasNames("cublasHandle_t", "cublasCreate_v2", "cublasSetStream_v2", "cublasSgemmStridedBatched",
                   "cublasDgemmStridedBatched", 0, 1)
# cuDeviceGetAttribute: max threads per block, max block dim x/y/z, max grid dim x/y/z, compute capability
ATTR_MAX_THREADS, ATTR_BLOCK, ATTR_GRID, ATTR_CC = 1, (2, 3, 4), (5, 6, 7), (75, 76)


def _wheel_libs(lib: str) -> list[str]:
    """``lib.so.N`` from NVIDIA's wheels (nvidia-cuda-nvrtc, nvidia-cublas; cu13 and cu12 layouts), newest first."""
    found = []
    try:
        import nvidia  # namespace package of NVIDIA's wheels
        for root in nvidia.__path__:
            found += sorted(glob.glob(os.path.join(root, "*", "lib", f"{lib}.so.*")), reverse=True)
    except ImportError:
        pass
    return [f for f in found if f.count(".so.") == 1 and f.split(".so.")[1].isdigit()]


def nvrtc_candidates() -> list[str]:
    """libnvrtc from the nvidia-cuda-nvrtc wheel first, then the system's."""
    return _wheel_libs("libnvrtc") + ["libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12"]


def open_nvrtc():
    return dlopen_first(ffi, nvrtc_candidates(), "NVRTC not found (libnvrtc.so): pip install "
                        "'neurenix-backend-cuda[nvrtc]', or install a CUDA toolkit")


def open_cuda():
    return dlopen_first(ffi, ["libcuda.so.1"], "no CUDA driver (libcuda.so.1 not found)")


class NvrtcCompiler:
    """CUDA C to a cubin for one ``sm_XY`` (or to PTX for ``compute_XY``), with NVRTC."""

    def __init__(self, lib):
        self.lib = lib
        major, minor = ffi.new("int*"), ffi.new("int*")
        lib.nvrtcVersion(major, minor)
        self.major, self.minor = major[0], minor[0]
        self.version = f"nvrtc{self.major}.{self.minor}"

    def supported(self) -> list[int]:
        n = ffi.new("int*")
        self.lib.nvrtcGetNumSupportedArchs(n)
        archs = ffi.new("int[]", n[0])
        self.lib.nvrtcGetSupportedArchs(archs)
        return list(archs)

    def compile(self, source: str, arch: str) -> bytes:
        lib = self.lib
        prog = ffi.new("nvrtcProgram*")
        self._check(lib.nvrtcCreateProgram(prog, source.encode(), b"nx_kernels.cu", 0, ffi.NULL, ffi.NULL), "create")
        try:
            opts = [ffi.new("char[]", o.encode()) for o in (f"--gpu-architecture={arch}", "--std=c++17")]
            status = lib.nvrtcCompileProgram(prog[0], len(opts), ffi.new("char*[]", opts))
            size = ffi.new("size_t*")
            lib.nvrtcGetProgramLogSize(prog[0], size)
            log = ffi.new("char[]", size[0] + 1)
            lib.nvrtcGetProgramLog(prog[0], log)
            if status:
                raise CompileError(f"NVRTC {self.major}.{self.minor} could not compile nx_kernels.cu for {arch} "
                                   f"({ffi.string(lib.nvrtcGetErrorString(status)).decode()}):\n"
                                   f"{ffi.string(log).decode(errors='replace')}")
            get_size, get = (lib.nvrtcGetCUBINSize, lib.nvrtcGetCUBIN) if arch.startswith("sm_") else \
                (lib.nvrtcGetPTXSize, lib.nvrtcGetPTX)
            get_size(prog[0], size)
            image = ffi.new("char[]", size[0])
            get(prog[0], image)
            return bytes(ffi.buffer(image, size[0]))
        finally:
            lib.nvrtcDestroyProgram(prog)

    def _check(self, status, what):
        if status:
            raise CompileError(f"nvrtc {what}: {ffi.string(self.lib.nvrtcGetErrorString(status)).decode()}")


def choose_target(cc: int, supported: list[int], nvrtc: tuple, driver: int) -> str:
    """What NVRTC builds for a device of compute capability ``cc`` (80 for sm_80). A cubin for the exact
    architecture when NVRTC knows it; else PTX for the newest one it knows below, which the driver compiles.
    Either way the driver must be at least NVRTC's major version, or it cannot load what NVRTC made."""
    if driver // 1000 < nvrtc[0]:
        raise GpuError(f"NVRTC {nvrtc[0]}.{nvrtc[1]} output needs a CUDA {nvrtc[0]} driver, and this driver "
                       f"supports CUDA {driver // 1000}.{driver % 1000 // 10}: install an nvidia-cuda-nvrtc "
                       f"matching the driver (for CUDA 12: nvidia-cuda-nvrtc-cu12) or update the driver")
    if cc in supported:
        return f"sm_{cc}"
    older = [a for a in supported if a < cc]
    if not older:
        raise GpuError(f"NVRTC {nvrtc[0]}.{nvrtc[1]} supports sm_{min(supported)} and newer; this GPU is sm_{cc}")
    return f"compute_{max(older)}"


class CudaDriver:
    """The CUDA driver API as the GPU runtime needs it (``cuda``, ``nvrtc``, ``cublas``: opened libraries)."""

    name = "cuda"

    def __init__(self, cuda, nvrtc, cublas=None):
        self.lib, self.compiler = cuda, NvrtcCompiler(nvrtc)
        self.blas = Blas(ffi, cublas, CUBLAS) if cublas is not None else None
        self._check(cuda.cuInit(0), "cuInit")
        v = ffi.new("int*")
        self._check(cuda.cuDriverGetVersion(v), "cuDriverGetVersion")
        self.version = v[0]
        self._contexts: dict[int, object] = {}
        self._lock = threading.Lock()
        self._thread = threading.local()  # the driver's current context is per host thread: so is what we know of it

    def _check(self, status: int, call: str, detail: str = "") -> None:
        if status:
            name = ffi.new("const char**")
            self.lib.cuGetErrorName(status, name)
            text = ffi.string(name[0]).decode() if name[0] != ffi.NULL else f"error {status}"
            exc = OutOfMemoryError if status == CUDA_ERROR_OUT_OF_MEMORY else GpuError
            raise exc(f"{call} failed: {text}{detail}")

    def _get(self, call: str, ctype: str, *args):
        out = ffi.new(ctype)
        self._check(getattr(self.lib, call)(out, *args), call)
        return out[0]

    def device_count(self) -> int:
        return self._get("cuDeviceGetCount", "int*")

    def _attr(self, attr: int, index: int) -> int:
        return self._get("cuDeviceGetAttribute", "int*", attr, self._get("cuDeviceGet", "CUdevice*", index))

    def device_name(self, index: int) -> str:
        name = ffi.new("char[]", 256)
        self._check(self.lib.cuDeviceGetName(name, 256, self._get("cuDeviceGet", "CUdevice*", index)),
                    "cuDeviceGetName")
        cc = self._attr(ATTR_CC[0], index), self._attr(ATTR_CC[1], index)
        return f"{ffi.string(name).decode()} (sm_{cc[0]}{cc[1]}, driver CUDA {self.version // 1000}." \
               f"{self.version % 1000 // 10}, {self.compiler.version})"

    def arch(self, index: int) -> str:
        cc = 10 * self._attr(ATTR_CC[0], index) + self._attr(ATTR_CC[1], index)
        return choose_target(cc, self.compiler.supported(), (self.compiler.major, self.compiler.minor), self.version)

    def limits(self, index: int) -> Limits:
        dev = self._get("cuDeviceGet", "CUdevice*", index)
        return Limits(self._attr(ATTR_MAX_THREADS, index), tuple(self._attr(a, index) for a in ATTR_BLOCK),
                      tuple(self._attr(a, index) for a in ATTR_GRID),
                      self._get("cuDeviceTotalMem_v2", "size_t*", dev))

    def activate(self, index: int) -> None:
        """Make device ``index``'s primary context current in the calling thread (a new thread has none)."""
        if getattr(self._thread, "current", None) == index:
            return
        with self._lock:
            ctx = self._contexts.get(index)
            if ctx is None:
                ctx = self._contexts[index] = self._get("cuDevicePrimaryCtxRetain", "CUcontext*",
                                                        self._get("cuDeviceGet", "CUdevice*", index))
        self._check(self.lib.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
        self._thread.current = index

    def alloc(self, nbytes: int) -> int:
        out = ffi.new("CUdeviceptr*")
        self._check(self.lib.cuMemAlloc_v2(out, nbytes), "cuMemAlloc", f" ({nbytes} bytes)")
        return out[0]

    def free(self, ptr: int) -> None:
        self._check(self.lib.cuMemFree_v2(ptr), "cuMemFree")

    def stream(self):
        return self._get("cuStreamCreate", "CUstream*", 1)  # non-blocking: no implicit sync with stream 0

    def htod(self, ptr: int, array: np.ndarray, stream) -> None:
        # pageable host memory: the driver stages it before returning, so the array may die right after
        self._check(self.lib.cuMemcpyHtoDAsync_v2(ptr, ffi.from_buffer(array), array.nbytes, stream), "cuMemcpyHtoD")

    def dtoh(self, array: np.ndarray, ptr: int, stream) -> None:
        self._check(self.lib.cuMemcpyDtoHAsync_v2(ffi.from_buffer(array), ptr, array.nbytes, stream), "cuMemcpyDtoH")
        self.sync(stream)

    def sync(self, stream) -> None:
        self._check(self.lib.cuStreamSynchronize(stream), "cuStreamSynchronize")

    def load(self, image: bytes):
        module = ffi.new("CUmodule*")
        self._check(self.lib.cuModuleLoadData(module, image), "cuModuleLoadData",
                    f" (NVRTC {self.compiler.major}.{self.compiler.minor}, driver CUDA {self.version})")
        return module[0]

    def function(self, module, name: str):
        fn = ffi.new("CUfunction*")
        self._check(self.lib.cuModuleGetFunction(fn, module, name.encode()), "cuModuleGetFunction", f" ({name})")
        return fn[0]

    def launch(self, fn, grid, block, params, stream) -> None:
        self._check(self.lib.cuLaunchKernel(fn, *grid, *block, 0, stream, ffi.cast("void**", params), ffi.NULL),
                    "cuLaunchKernel", f" (grid {grid}, block {block})")


def open_cublas():
    """libcuBLAS, or None: matmul then runs the tiled kernel."""
    return dlopen_first(ffi, _wheel_libs("libcublas") + ["libcublas.so", "libcublas.so.13", "libcublas.so.12"])
