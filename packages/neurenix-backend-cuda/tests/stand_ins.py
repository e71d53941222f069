"""Stand-ins for libcuda, NVRTC and cuBLAS: neurenix_gpu's emulator under the CUDA libraries' names and calling
conventions (a status returned, results written through out-pointers), with the statuses of this package's
cdef (pinned to the headers by test_abi.py)."""

from __future__ import annotations

import functools

from neurenix_backend_cuda.cuda import CALLS, COMPUTE_CAPABILITY, CUBLAS, ENUMS, ffi
from neurenix_gpu.testing.emulator import Emulator, address, string, write
from neurenix_gpu.testing.emulator.blas import Codes, Gemm
from neurenix_gpu.testing.emulator.rtc import Rtc

OK, INVALID_VALUE, OUT_OF_MEMORY, INVALID_CONTEXT, NOT_FOUND = (ENUMS[f"CUDA_{n}"] for n in (
    "SUCCESS", "ERROR_INVALID_VALUE", "ERROR_OUT_OF_MEMORY", "ERROR_INVALID_CONTEXT", "ERROR_NOT_FOUND"))
ERROR_NAMES = ffi.typeof("CUresult").elements


def _in_context(call):
    """A driver call that fails with CUDA_ERROR_INVALID_CONTEXT in a thread without a current context."""
    @functools.wraps(call)
    def checked(self, *args):
        return INVALID_CONTEXT if self.emu.current() is None else call(self, *args)
    return checked


class FakeCuda:
    """libcuda: devices with the emulator's limits; memory, streams (in order, so synchronous) and launches.

    As the real driver, it keeps the current context per host thread (context i + 1 is device i's): a call that
    needs one fails with CUDA_ERROR_INVALID_CONTEXT in a thread that has not made one current, and a kernel
    launches only in the context its module was loaded in."""

    def __init__(self, emulator: Emulator, version: int = 13000, cc: tuple = (8, 0)):
        self.emu, self.version = emulator, version
        threads, block, grid = CALLS.attributes
        self.attributes = {threads: emulator.max_threads, **dict(zip(block, emulator.max_block)),
                           **dict(zip(grid, emulator.max_grid)), **dict(zip(COMPUTE_CAPABILITY, cc))}

    def cuInit(self, flags):
        return OK

    def cuDriverGetVersion(self, v):
        v[0] = self.version
        return OK

    def cuDeviceGetCount(self, n):
        n[0] = self.emu.devices
        return OK

    def cuDeviceGet(self, dev, index):
        if index >= self.emu.devices:
            return INVALID_VALUE
        dev[0] = index
        return OK

    def cuDeviceGetName(self, out, n, dev):
        write(out, f"Emulated GPU {dev} (host CPU)".encode()[:n - 1] + b"\0")
        return OK

    def cuDeviceGetAttribute(self, out, attr, dev):
        out[0] = self.attributes[attr]
        return OK

    def cuDeviceTotalMem_v2(self, out, dev):
        out[0] = self.emu.capacity
        return OK

    def cuDevicePrimaryCtxRetain(self, ctx, dev):
        ctx[0] = ffi.cast("CUcontext", dev + 1)
        return OK

    def cuCtxSetCurrent(self, ctx):
        self.emu.make_current(address(ctx) - 1 if address(ctx) else None)
        return OK

    @_in_context
    def cuMemAlloc_v2(self, out, size):
        addr = self.emu.alloc(size, self.emu.current())
        if addr is None:
            return OUT_OF_MEMORY
        out[0] = addr
        return OK

    @_in_context
    def cuMemFree_v2(self, ptr):
        self.emu.free(int(ptr))
        return OK

    @_in_context
    def cuMemcpyHtoDAsync_v2(self, dst, src, n, stream):
        self.emu.copy(int(dst), address(src), n)
        return OK

    @_in_context
    def cuMemcpyDtoHAsync_v2(self, dst, src, n, stream):
        self.emu.copy(address(dst), int(src), n)
        return OK

    @_in_context
    def cuStreamCreate(self, out, flags):
        out[0] = ffi.cast("CUstream", 1)
        return OK

    @_in_context
    def cuStreamSynchronize(self, stream):
        return OK

    @_in_context
    def cuModuleLoadData(self, out, image):
        out[0] = ffi.cast("CUmodule", self.emu.load(bytes(image), self.emu.current()))
        return OK

    def cuModuleGetFunction(self, out, module, name):
        fn = self.emu.function(address(module), string(name))
        if fn is None:
            return NOT_FOUND
        out[0] = ffi.cast("CUfunction", fn)
        return OK

    def cuLaunchKernel(self, fn, gx, gy, gz, bx, by, bz, shared, stream, params, extra):
        fn = address(fn)
        if self.emu.functions[fn][2] != self.emu.current():  # the module's context only
            return INVALID_CONTEXT
        return OK if self.emu.launch(fn, (gx, gy, gz), (bx, by, bz), address(params)) else INVALID_VALUE

    def cuGetErrorName(self, status, out):
        self._name = ffi.new("char[]", ERROR_NAMES.get(status, "CUDA_ERROR_UNKNOWN").encode())
        out[0] = self._name
        return OK


def fake_nvrtc(emulator: Emulator, version: tuple = (13, 0)) -> Rtc:
    """NVRTC: "compiles" by building the source for the host; knows sm_75, sm_80 and sm_90."""
    return Rtc(emulator, "nvrtc", ("CUBIN", "PTX"), version, ffi.typeof("nvrtcResult").relements, "NVRTC_SUCCESS",
               "NVRTC_ERROR_COMPILATION", archs=(75, 80, 90))


def fake_cublas(emulator: Emulator) -> Gemm:
    """libcublas: handles, streams, S/D strided-batched GEMM."""
    return Gemm(emulator, CUBLAS, Codes(*(ENUMS[f"CUBLAS_STATUS_{n}"] for n in (
        "SUCCESS", "NOT_INITIALIZED", "INVALID_VALUE", "INVALID_VALUE", "EXECUTION_FAILED"))))
