"""A :class:`~neurenix_gpu.driver.Driver` straight over the emulator, with no vendor API in between: how the
host layer is tested on its own, and the smallest complete example of the protocol."""

from __future__ import annotations

import numpy as np
from cffi import FFI

from ..driver import Limits
from ..errors import CompileError, GpuError, OutOfMemoryError
from .emulator import Emulator, address

_ffi = FFI()


class HostCompiler:
    """The kernel source built for the host by the emulator's C++ compiler."""

    version = "host-c++"

    def __init__(self, emulator: Emulator):
        self.emu = emulator

    def compile(self, source: str, arch: str) -> bytes:
        ok, log, image = self.emu.compile(source)
        if not ok:
            raise CompileError(f"the host compiler could not build the kernels:\n{log}")
        return image


class EmulatedDriver:
    """The emulator's devices through the Driver protocol; no BLAS (matmul runs the tiled kernel)."""

    name = "emulated"
    blas = None

    def __init__(self, emulator: Emulator):
        self.emu, self.compiler = emulator, HostCompiler(emulator)

    def device_count(self) -> int:
        return self.emu.devices

    def device_name(self, index: int) -> str:
        return f"Emulated GPU {index} (host CPU)"

    def arch(self, index: int) -> str:
        return "host"

    def limits(self, index: int) -> Limits:
        e = self.emu
        return Limits(e.max_threads, e.max_block, e.max_grid, e.capacity)

    def activate(self, index: int) -> None:
        self.emu.make_current(index)

    def alloc(self, nbytes: int) -> int:
        addr = self.emu.alloc(nbytes, self.emu.current())
        if addr is None:
            raise OutOfMemoryError(f"alloc failed: out of memory ({nbytes} bytes)")
        return addr

    def free(self, ptr: int) -> None:
        self.emu.free(ptr)

    def stream(self) -> object:
        return None  # the emulator runs each call at once, in order

    def htod(self, ptr: int, array: np.ndarray, stream) -> None:
        self.emu.copy(ptr, address(_ffi.from_buffer(array)), array.nbytes)

    def dtoh(self, array: np.ndarray, ptr: int, stream) -> None:
        self.emu.copy(address(_ffi.from_buffer(array)), ptr, array.nbytes)

    def sync(self, stream) -> None:
        pass  # nothing is ever pending

    def load(self, image: bytes) -> object:
        return self.emu.load(image, self.emu.current())

    def function(self, module, name: str) -> object:
        fn = self.emu.function(module, name)
        if fn is None:
            raise GpuError(f"function failed: no kernel {name!r}")
        return fn

    def launch(self, fn, grid: tuple, block: tuple, params, stream) -> None:
        if not self.emu.launch(fn, grid, block, address(params)):
            raise GpuError(f"launch failed: grid {grid}, block {block} beyond the device's limits")
