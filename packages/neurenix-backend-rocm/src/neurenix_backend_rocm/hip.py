"""The HIP runtime, hiprtc and rocBLAS through cffi in ABI mode (``libamdhip64`` opened at run time): the
Driver of neurenix_gpu's host layer, over the same kernel source as CUDA's."""

from __future__ import annotations

import re

from neurenix_gpu import GpuError, VendorCalls, VendorDriver, declare, dlopen_first
from neurenix_gpu.blas import BlasNames
from neurenix_gpu.compiler import RtcCompiler

# The declarations of the three libraries, each checked against its header by tests/test_abi.py (rocBLAS's
# where rocblas.h is installed). Enums list the enumerators this package uses (its stand-ins in tests
# included), with the headers' values: those of HIP's device attributes are ROCm 5's and 6's.
HIP_CDEF = """
typedef enum { hipSuccess = 0, hipErrorInvalidValue = 1, hipErrorOutOfMemory = 2,
               hipErrorInvalidDeviceFunction = 98, hipErrorNoDevice = 100, hipErrorInvalidDevice = 101,
               hipErrorNotFound = 500 } hipError_t;
typedef enum { hipDeviceAttributeMaxBlockDimX = 26, hipDeviceAttributeMaxBlockDimY = 27,
               hipDeviceAttributeMaxBlockDimZ = 28, hipDeviceAttributeMaxGridDimX = 29,
               hipDeviceAttributeMaxGridDimY = 30, hipDeviceAttributeMaxGridDimZ = 31,
               hipDeviceAttributeMaxThreadsPerBlock = 56 } hipDeviceAttribute_t;
typedef int hipDevice_t; typedef void* hipDeviceptr_t;
typedef struct ihipModule_t* hipModule_t; typedef struct ihipModuleSymbol_t* hipFunction_t;
typedef struct ihipStream_t* hipStream_t;
hipError_t hipInit(unsigned); hipError_t hipDriverGetVersion(int*); hipError_t hipGetDeviceCount(int*);
hipError_t hipDeviceGetName(char*, int, hipDevice_t); hipError_t hipDeviceGetAttribute(int*, hipDeviceAttribute_t, int);
hipError_t hipDeviceTotalMem(size_t*, hipDevice_t); hipError_t hipSetDevice(int);
hipError_t hipMalloc(void**, size_t); hipError_t hipFree(void*);
hipError_t hipMemcpyHtoDAsync(hipDeviceptr_t, void*, size_t, hipStream_t);
hipError_t hipMemcpyDtoHAsync(void*, hipDeviceptr_t, size_t, hipStream_t);
hipError_t hipStreamCreateWithFlags(hipStream_t*, unsigned); hipError_t hipStreamSynchronize(hipStream_t);
hipError_t hipModuleLoadData(hipModule_t*, const void*);
hipError_t hipModuleGetFunction(hipFunction_t*, hipModule_t, const char*);
hipError_t hipModuleLaunchKernel(hipFunction_t, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                                 hipStream_t, void**, void**);
const char* hipGetErrorName(hipError_t);
"""
HIPRTC_CDEF = """
typedef enum { HIPRTC_SUCCESS = 0, HIPRTC_ERROR_COMPILATION = 6 } hiprtcResult;
typedef struct _hiprtcProgram* hiprtcProgram;
hiprtcResult hiprtcVersion(int*, int*);
hiprtcResult hiprtcCreateProgram(hiprtcProgram*, const char*, const char*, int, const char**, const char**);
hiprtcResult hiprtcCompileProgram(hiprtcProgram, int, const char**); hiprtcResult hiprtcDestroyProgram(hiprtcProgram*);
hiprtcResult hiprtcGetProgramLogSize(hiprtcProgram, size_t*); hiprtcResult hiprtcGetProgramLog(hiprtcProgram, char*);
hiprtcResult hiprtcGetCodeSize(hiprtcProgram, size_t*); hiprtcResult hiprtcGetCode(hiprtcProgram, char*);
const char* hiprtcGetErrorString(hiprtcResult);
"""
# rocblas-types.h, unchanged from rocBLAS 2.x of 2019 through ROCm 6: rocblas_operation follows CBLAS's numbering;
# rocblas_int is int32 (not the ILP64 build), rocblas_stride int64
ROCBLAS_CDEF = """
typedef enum { rocblas_status_success = 0, rocblas_status_invalid_handle = 1, rocblas_status_invalid_size = 4,
               rocblas_status_internal_error = 6, rocblas_status_invalid_value = 11 } rocblas_status;
typedef enum { rocblas_operation_none = 111, rocblas_operation_transpose = 112 } rocblas_operation;
typedef int32_t rocblas_int; typedef int64_t rocblas_stride;
typedef struct _rocblas_handle* rocblas_handle;
rocblas_status rocblas_create_handle(rocblas_handle*); rocblas_status rocblas_set_stream(rocblas_handle, hipStream_t);
rocblas_status rocblas_sgemm_strided_batched(rocblas_handle, rocblas_operation, rocblas_operation, rocblas_int,
                                             rocblas_int, rocblas_int, const float*, const float*, rocblas_int,
                                             rocblas_stride, const float*, rocblas_int, rocblas_stride, const float*,
                                             float*, rocblas_int, rocblas_stride, rocblas_int);
rocblas_status rocblas_dgemm_strided_batched(rocblas_handle, rocblas_operation, rocblas_operation, rocblas_int,
                                             rocblas_int, rocblas_int, const double*, const double*, rocblas_int,
                                             rocblas_stride, const double*, rocblas_int, rocblas_stride, const double*,
                                             double*, rocblas_int, rocblas_stride, rocblas_int);
"""

ffi, ENUMS = declare(HIP_CDEF, HIPRTC_CDEF, ROCBLAS_CDEF)

ROCBLAS = BlasNames("rocblas_handle", "rocblas_create_handle", "rocblas_set_stream", "rocblas_sgemm_strided_batched",
                    "rocblas_dgemm_strided_batched", ENUMS["rocblas_operation_none"],
                    ENUMS["rocblas_operation_transpose"])
CALLS = VendorCalls(
    ptr="hipDeviceptr_t", alloc="hipMalloc", free="hipFree", htod="hipMemcpyHtoDAsync", dtoh="hipMemcpyDtoHAsync",
    stream="hipStreamCreateWithFlags", stream_type="hipStream_t", sync="hipStreamSynchronize",
    load="hipModuleLoadData", module_type="hipModule_t", function="hipModuleGetFunction",
    function_type="hipFunction_t", launch="hipModuleLaunchKernel", out_of_memory=ENUMS["hipErrorOutOfMemory"],
    attributes=(ENUMS["hipDeviceAttributeMaxThreadsPerBlock"],
                tuple(ENUMS[f"hipDeviceAttributeMaxBlockDim{a}"] for a in "XYZ"),
                tuple(ENUMS[f"hipDeviceAttributeMaxGridDim{a}"] for a in "XYZ")))
NO_DEVICE = ENUMS["hipErrorNoDevice"], ENUMS["hipErrorInvalidDevice"]


def open_hip():
    """libamdhip64 (hiprtc is inside it up to ROCm 5; ROCm 6 ships libhiprtc beside it)."""
    return dlopen_first(ffi, ["libamdhip64.so", "libamdhip64.so.6", "libamdhip64.so.5"],
                        "no HIP runtime (libamdhip64.so not found)")


def open_hiprtc(hip):
    return dlopen_first(ffi, ["libhiprtc.so", "libhiprtc.so.6"]) or hip


def open_rocblas():
    """librocblas (ROCm 6: .so.4, ROCm 5: .so.0), or None: matmul then runs the tiled kernel."""
    return dlopen_first(ffi, ["librocblas.so", "librocblas.so.4", "librocblas.so.0"])


class HiprtcCompiler(RtcCompiler):
    """HIP C++ to a code object for one ``gfx...`` target (``native``: the current device's) with hiprtc."""

    title, prefix = "hiprtc", "hiprtc"

    def __init__(self, lib):
        super().__init__(ffi, lib)

    def options(self, arch: str) -> list[str]:
        return ["-std=c++17"] + ([] if arch.startswith("native") else [f"--offload-arch={arch}"])

    def code_calls(self, arch: str) -> tuple[str, str]:
        return "GetCodeSize", "GetCode"


class HipDriver(VendorDriver):
    """The HIP runtime as the host layer needs it (``hip``, ``hiprtc``, ``rocblas``: opened libraries, or
    stand-ins with their names)."""

    name, calls, blas_names = "rocm", CALLS, ROCBLAS

    def __init__(self, hip, hiprtc, rocblas=None):
        super().__init__(ffi, hip, HiprtcCompiler(hiprtc), rocblas)
        status = hip.hipInit(0)
        if status in NO_DEVICE:
            raise GpuError(f"no HIP device ({self.error_name(status)})")
        self.check(status, "hipInit")

    def error_name(self, status: int) -> str:
        return ffi.string(self.lib.hipGetErrorName(status)).decode()

    def attribute(self, attr: int, index: int) -> int:
        return self.get("hipDeviceGetAttribute", "int*", attr, index)

    def total_memory(self, index: int) -> int:
        return self.get("hipDeviceTotalMem", "size_t*", index)

    def make_current(self, index: int) -> None:
        self.check(self.lib.hipSetDevice(index), "hipSetDevice")

    def device_count(self) -> int:
        n = ffi.new("int*")
        status = self.lib.hipGetDeviceCount(n)
        if status == NO_DEVICE[0]:
            raise GpuError(f"no HIP device ({self.error_name(status)})")
        self.check(status, "hipGetDeviceCount")
        return n[0]

    def device_name(self, index: int) -> str:
        name = ffi.new("char[]", 256)
        self.check(self.lib.hipDeviceGetName(name, 256, index), "hipDeviceGetName")
        return f"{ffi.string(name).decode()} ({self.compiler.version})"

    def arch(self, index: int) -> str:
        # hiprtc without --offload-arch targets the current device; the name keys the disk cache
        return "native-" + re.sub(r"[^A-Za-z0-9]+", "_", self.device_name(index))
