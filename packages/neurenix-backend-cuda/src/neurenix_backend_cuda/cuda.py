"""The CUDA driver API, NVRTC and cuBLAS through cffi in ABI mode: libraries opened at run time, so no CUDA
is needed to install this package. ``CudaDriver`` is neurenix_gpu's Driver for them; each method is one
vendor call deep, which is what lets tests put the emulator's stand-in libraries underneath."""

from __future__ import annotations

import glob
import os
import threading

from neurenix_gpu import GpuError, VendorCalls, VendorDriver, declare, dlopen_first
from neurenix_gpu.blas import BlasNames
from neurenix_gpu.compiler import RtcCompiler

# The declarations of the three libraries, each checked against its header by tests/test_abi.py. Enums list
# the enumerators this package uses (its stand-ins in tests included), with the headers' values.
CUDA_CDEF = """
typedef enum { CUDA_SUCCESS = 0, CUDA_ERROR_INVALID_VALUE = 1, CUDA_ERROR_OUT_OF_MEMORY = 2,
               CUDA_ERROR_NO_DEVICE = 100, CUDA_ERROR_INVALID_CONTEXT = 201, CUDA_ERROR_NOT_FOUND = 500 } CUresult;
typedef enum { CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 1, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X = 2,
               CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y = 3, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z = 4,
               CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X = 5, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y = 6,
               CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z = 7, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
               CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76 } CUdevice_attribute;
typedef int CUdevice; typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st* CUcontext; typedef struct CUmod_st* CUmodule; typedef struct CUfunc_st* CUfunction;
typedef struct CUstream_st* CUstream;
CUresult cuInit(unsigned); CUresult cuDriverGetVersion(int*); CUresult cuDeviceGetCount(int*);
CUresult cuDeviceGet(CUdevice*, int); CUresult cuDeviceGetName(char*, int, CUdevice);
CUresult cuDeviceGetAttribute(int*, CUdevice_attribute, CUdevice); CUresult cuDeviceTotalMem_v2(size_t*, CUdevice);
CUresult cuDevicePrimaryCtxRetain(CUcontext*, CUdevice); CUresult cuCtxSetCurrent(CUcontext);
CUresult cuMemAlloc_v2(CUdeviceptr*, size_t); CUresult cuMemFree_v2(CUdeviceptr);
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr, const void*, size_t, CUstream);
CUresult cuMemcpyDtoHAsync_v2(void*, CUdeviceptr, size_t, CUstream);
CUresult cuStreamCreate(CUstream*, unsigned); CUresult cuStreamSynchronize(CUstream);
CUresult cuModuleLoadData(CUmodule*, const void*); CUresult cuModuleGetFunction(CUfunction*, CUmodule, const char*);
CUresult cuLaunchKernel(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream,
                        void**, void**);
CUresult cuGetErrorName(CUresult, const char**);
"""
NVRTC_CDEF = """
typedef enum { NVRTC_SUCCESS = 0, NVRTC_ERROR_COMPILATION = 6 } nvrtcResult;
typedef struct _nvrtcProgram* nvrtcProgram;
nvrtcResult nvrtcVersion(int*, int*);
nvrtcResult nvrtcGetNumSupportedArchs(int*); nvrtcResult nvrtcGetSupportedArchs(int*);
nvrtcResult nvrtcCreateProgram(nvrtcProgram*, const char*, const char*, int, const char* const*, const char* const*);
nvrtcResult nvrtcCompileProgram(nvrtcProgram, int, const char* const*);
nvrtcResult nvrtcDestroyProgram(nvrtcProgram*);
nvrtcResult nvrtcGetProgramLogSize(nvrtcProgram, size_t*); nvrtcResult nvrtcGetProgramLog(nvrtcProgram, char*);
nvrtcResult nvrtcGetCUBINSize(nvrtcProgram, size_t*); nvrtcResult nvrtcGetCUBIN(nvrtcProgram, char*);
nvrtcResult nvrtcGetPTXSize(nvrtcProgram, size_t*); nvrtcResult nvrtcGetPTX(nvrtcProgram, char*);
const char* nvrtcGetErrorString(nvrtcResult);
"""
CUBLAS_CDEF = """
typedef enum { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_NOT_INITIALIZED = 1, CUBLAS_STATUS_INVALID_VALUE = 7,
               CUBLAS_STATUS_EXECUTION_FAILED = 13 } cublasStatus_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;
typedef struct cublasContext* cublasHandle_t;
cublasStatus_t cublasCreate_v2(cublasHandle_t*); cublasStatus_t cublasSetStream_v2(cublasHandle_t, CUstream);
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                                         const float*, const float*, int, long long, const float*, int, long long,
                                         const float*, float*, int, long long, int);
cublasStatus_t cublasDgemmStridedBatched(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                                         const double*, const double*, int, long long, const double*, int, long long,
                                         const double*, double*, int, long long, int);
"""

ffi, ENUMS = declare(CUDA_CDEF, NVRTC_CDEF, CUBLAS_CDEF)

CUBLAS = BlasNames("cublasHandle_t", "cublasCreate_v2", "cublasSetStream_v2", "cublasSgemmStridedBatched",
                   "cublasDgemmStridedBatched", ENUMS["CUBLAS_OP_N"], ENUMS["CUBLAS_OP_T"])
_ATTR = "CU_DEVICE_ATTRIBUTE_"
CALLS = VendorCalls(
    ptr="CUdeviceptr", alloc="cuMemAlloc_v2", free="cuMemFree_v2", htod="cuMemcpyHtoDAsync_v2",
    dtoh="cuMemcpyDtoHAsync_v2", stream="cuStreamCreate", stream_type="CUstream", sync="cuStreamSynchronize",
    load="cuModuleLoadData", module_type="CUmodule", function="cuModuleGetFunction", function_type="CUfunction",
    launch="cuLaunchKernel", out_of_memory=ENUMS["CUDA_ERROR_OUT_OF_MEMORY"],
    attributes=(ENUMS[_ATTR + "MAX_THREADS_PER_BLOCK"], tuple(ENUMS[f"{_ATTR}MAX_BLOCK_DIM_{a}"] for a in "XYZ"),
                tuple(ENUMS[f"{_ATTR}MAX_GRID_DIM_{a}"] for a in "XYZ")))
COMPUTE_CAPABILITY = ENUMS[_ATTR + "COMPUTE_CAPABILITY_MAJOR"], ENUMS[_ATTR + "COMPUTE_CAPABILITY_MINOR"]


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


class NvrtcCompiler(RtcCompiler):
    """CUDA C to a cubin for one ``sm_XY`` (or to PTX for ``compute_XY``), with NVRTC."""

    title, prefix = "NVRTC", "nvrtc"

    def __init__(self, lib):
        super().__init__(ffi, lib)

    def options(self, arch: str) -> list[str]:
        return [f"--gpu-architecture={arch}", "--std=c++17"]

    def code_calls(self, arch: str) -> tuple[str, str]:
        return ("GetCUBINSize", "GetCUBIN") if arch.startswith("sm_") else ("GetPTXSize", "GetPTX")

    def supported(self) -> list[int]:
        n = ffi.new("int*")
        self.lib.nvrtcGetNumSupportedArchs(n)
        archs = ffi.new("int[]", n[0])
        self.lib.nvrtcGetSupportedArchs(archs)
        return list(archs)


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


class CudaDriver(VendorDriver):
    """The CUDA driver API as the host layer needs it (``cuda``, ``nvrtc``, ``cublas``: opened libraries, or
    stand-ins with their names)."""

    name, calls, blas_names = "cuda", CALLS, CUBLAS

    def __init__(self, cuda, nvrtc, cublas=None):
        super().__init__(ffi, cuda, NvrtcCompiler(nvrtc), cublas)
        self.check(cuda.cuInit(0), "cuInit")
        self.version = self.get("cuDriverGetVersion", "int*")
        self._contexts: dict[int, object] = {}
        self._lock = threading.Lock()

    def error_name(self, status: int) -> str:
        name = ffi.new("const char**")
        self.lib.cuGetErrorName(status, name)
        return ffi.string(name[0]).decode() if name[0] != ffi.NULL else f"error {status}"

    def _device(self, index: int) -> int:
        return self.get("cuDeviceGet", "CUdevice*", index)

    def attribute(self, attr: int, index: int) -> int:
        return self.get("cuDeviceGetAttribute", "int*", attr, self._device(index))

    def total_memory(self, index: int) -> int:
        return self.get("cuDeviceTotalMem_v2", "size_t*", self._device(index))

    def make_current(self, index: int) -> None:
        """Device ``index``'s primary context, retained once."""
        with self._lock:
            ctx = self._contexts.get(index)
            if ctx is None:
                ctx = self._contexts[index] = self.get("cuDevicePrimaryCtxRetain", "CUcontext*", self._device(index))
        self.check(self.lib.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")

    def device_count(self) -> int:
        return self.get("cuDeviceGetCount", "int*")

    def device_name(self, index: int) -> str:
        name = ffi.new("char[]", 256)
        self.check(self.lib.cuDeviceGetName(name, 256, self._device(index)), "cuDeviceGetName")
        cc = tuple(self.attribute(a, index) for a in COMPUTE_CAPABILITY)
        return f"{ffi.string(name).decode()} (sm_{cc[0]}{cc[1]}, driver CUDA {self.version // 1000}." \
               f"{self.version % 1000 // 10}, {self.compiler.version})"

    def arch(self, index: int) -> str:
        major, minor = (self.attribute(a, index) for a in COMPUTE_CAPABILITY)
        c = self.compiler
        return choose_target(10 * major + minor, c.supported(), (c.major, c.minor), self.version)


def open_cublas():
    """libcuBLAS, or None: matmul then runs the tiled kernel."""
    return dlopen_first(ffi, _wheel_libs("libcublas") + ["libcublas.so", "libcublas.so.13", "libcublas.so.12"])
