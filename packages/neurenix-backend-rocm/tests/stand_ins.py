"""Stand-ins for libamdhip64, hiprtc and rocBLAS: neurenix_gpu's emulator under HIP's names and calling
conventions, with the statuses of this package's cdef (pinned to the headers by test_abi.py)."""

from __future__ import annotations

from neurenix_backend_rocm.hip import CALLS, ENUMS, ROCBLAS, ffi
from neurenix_gpu.testing.emulator import Emulator, address, string, write
from neurenix_gpu.testing.emulator.blas import Codes, Gemm
from neurenix_gpu.testing.emulator.rtc import Rtc

OK, INVALID_VALUE, OUT_OF_MEMORY, NOT_FOUND, INVALID_DEVICE_FUNCTION = (ENUMS[f"hip{n}"] for n in (
    "Success", "ErrorInvalidValue", "ErrorOutOfMemory", "ErrorNotFound", "ErrorInvalidDeviceFunction"))
ERROR_NAMES = ffi.typeof("hipError_t").elements


class FakeHip:
    """libamdhip64: devices with the emulator's limits, memory, streams (in order, so synchronous), modules
    and launches. As HIP, it keeps the current device per host thread, device 0 until ``hipSetDevice``; a
    kernel launches only on the device its module was loaded on (else hipErrorInvalidDeviceFunction)."""

    def __init__(self, emulator: Emulator):
        self.emu = emulator
        threads, block, grid = CALLS.attributes
        self.attributes = {threads: emulator.max_threads, **dict(zip(block, emulator.max_block)),
                           **dict(zip(grid, emulator.max_grid))}

    def _device(self) -> int:
        device = self.emu.current()
        return 0 if device is None else device

    def hipInit(self, flags):
        return OK

    def hipGetDeviceCount(self, n):
        n[0] = self.emu.devices
        return OK

    def hipDeviceGetName(self, out, n, dev):
        write(out, f"Emulated GPU {dev} (host CPU)".encode()[:n - 1] + b"\0")
        return OK

    def hipDeviceGetAttribute(self, out, attr, dev):
        out[0] = self.attributes[attr]
        return OK

    def hipDeviceTotalMem(self, out, dev):
        out[0] = self.emu.capacity
        return OK

    def hipSetDevice(self, dev):
        if not 0 <= dev < self.emu.devices:
            return INVALID_VALUE
        self.emu.make_current(dev)
        return OK

    def hipMalloc(self, out, size):
        addr = self.emu.alloc(size, self._device())
        if addr is None:
            return OUT_OF_MEMORY
        out[0] = ffi.cast("void*", addr)
        return OK

    def hipFree(self, ptr):
        self.emu.free(address(ptr))
        return OK

    def hipMemcpyHtoDAsync(self, dst, src, n, stream):
        self.emu.copy(address(dst), address(src), n)
        return OK

    hipMemcpyDtoHAsync = hipMemcpyHtoDAsync  # noqa: N815 - the vendor's name; both copy n bytes dst <- src

    def hipStreamCreateWithFlags(self, out, flags):
        out[0] = ffi.cast("hipStream_t", 1)
        return OK

    def hipStreamSynchronize(self, stream):
        return OK

    def hipModuleLoadData(self, out, image):
        out[0] = ffi.cast("hipModule_t", self.emu.load(bytes(image), self._device()))
        return OK

    def hipModuleGetFunction(self, out, module, name):
        fn = self.emu.function(address(module), string(name))
        if fn is None:
            return NOT_FOUND
        out[0] = ffi.cast("hipFunction_t", fn)
        return OK

    def hipModuleLaunchKernel(self, fn, gx, gy, gz, bx, by, bz, shared, stream, params, extra):
        fn = address(fn)
        if self.emu.functions[fn][2] != self._device():  # a module of another device than this thread's
            return INVALID_DEVICE_FUNCTION
        return OK if self.emu.launch(fn, (gx, gy, gz), (bx, by, bz), address(params)) else INVALID_VALUE

    def hipGetErrorName(self, status):
        self._name = ffi.new("char[]", ERROR_NAMES.get(status, "hipErrorUnknown").encode())
        return self._name


def fake_hiprtc(emulator: Emulator, version: tuple = (5, 2)) -> Rtc:
    """hiprtc: "compiles" by building the source for the host."""
    return Rtc(emulator, "hiprtc", ("Code",), version, ffi.typeof("hiprtcResult").relements, "HIPRTC_SUCCESS",
               "HIPRTC_ERROR_COMPILATION")


def fake_rocblas(emulator: Emulator) -> Gemm:
    """librocblas: handles, streams, S/D strided-batched GEMM."""
    return Gemm(emulator, ROCBLAS, Codes(*(ENUMS[f"rocblas_status_{n}"] for n in (
        "success", "invalid_handle", "invalid_size", "invalid_value", "internal_error"))))
