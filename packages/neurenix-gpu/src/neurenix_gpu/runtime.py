"""One GPU as the kernels see it: compiled module (disk-cached), caching allocator, stream, checked launches.

Everything here is vendor-neutral: it calls only the :class:`~neurenix_gpu.driver.Driver` protocol.
"""

from __future__ import annotations

import contextlib
import math
import threading

import numpy as np

from . import source
from .driver import Driver
from .errors import CompileError, GpuError, OutOfMemoryError

_SMALL, _LARGE = 512, 1 << 20  # allocation granularity below and above 1 MiB


class Allocator:
    """Device memory by rounded size, kept for reuse when buffers die. Reuse needs no synchronization:
    all work of a device is ordered on its one stream (whichever host thread queues it), so a later kernel
    cannot overtake an earlier reader. The cache is shared by threads, behind a lock; re-entrant, since a
    buffer the garbage collector frees during an allocation comes back through :meth:`release`."""

    def __init__(self, driver: Driver, name: str, total: int, index: int = 0):
        self.driver, self.name, self.total, self.index = driver, name, total, index
        self.free_blocks: dict[int, list[int]] = {}
        self.in_use = self.cached = 0
        self.lock = threading.RLock()

    def alloc(self, nbytes: int) -> Memory:
        step = _SMALL if nbytes <= _LARGE else _LARGE
        size = max(step, -(-nbytes // step) * step)
        with self.lock:
            blocks = self.free_blocks.get(size)
            if blocks:
                self.cached -= size
                ptr = blocks.pop()
            else:
                ptr = self._fresh(nbytes, size)
            self.in_use += size
        return Memory(self, ptr, size)

    def _fresh(self, nbytes: int, size: int) -> int:
        self.driver.activate(self.index)  # memory of this device, whichever device this thread used last
        try:
            return self.driver.alloc(size)
        except OutOfMemoryError:
            freed = self.empty_cache()
            try:
                return self.driver.alloc(size)
            except OutOfMemoryError as e:
                raise OutOfMemoryError(
                    f"out of memory on {self.name}: cannot allocate {nbytes} bytes ({size} rounded); "
                    f"{self.in_use} bytes held by live tensors, {freed} cached bytes freed before retrying, "
                    f"device total {self.total} bytes ({e})") from None

    def release(self, ptr: int, size: int) -> None:
        with self.lock:
            self.in_use -= size
            self.cached += size
            self.free_blocks.setdefault(size, []).append(ptr)

    def empty_cache(self) -> int:
        with self.lock:
            freed = self.cached
            self.driver.activate(self.index)
            for blocks in self.free_blocks.values():
                for ptr in blocks:
                    self.driver.free(ptr)
            self.free_blocks.clear()
            self.cached = 0
            return freed


class Memory:
    """An allocation; back to the allocator's cache when the last buffer using it dies."""

    __slots__ = ("allocator", "ptr", "size")

    def __init__(self, allocator: Allocator, ptr: int, size: int):
        self.allocator, self.ptr, self.size = allocator, ptr, size

    def __del__(self):
        with contextlib.suppress(Exception):  # at interpreter shutdown the allocator may be gone first
            self.allocator.release(self.ptr, self.size)


class GpuBuffer:
    """A C-contiguous array in device memory. Buffers never change after their kernel: reshape shares memory.
    ``dtype`` is a ``numpy.dtype``; ``ptr`` the device address of element 0."""

    __slots__ = ("__weakref__", "device", "dtype", "mem", "ptr", "shape", "size")  # (weak: a trace forgets dead ones)

    def __init__(self, device: GpuDevice, shape: tuple, dtype: np.dtype, mem: Memory | None = None):
        self.device, self.shape, self.dtype = device, shape, dtype
        self.size = math.prod(shape)
        self.mem = mem or device.allocator.alloc(self.size * dtype.itemsize)
        self.ptr = self.mem.ptr

    def __repr__(self) -> str:
        return f"GpuBuffer(shape={self.shape}, dtype={self.dtype}, device={self.device.name})"


class I32(int):
    """A kernel argument declared ``int`` (4 bytes); plain ints go as ``long long``."""


_U64, _I32, _I64, _PARAMS = (source.ffi.typeof(t) for t in ("unsigned long long*", "int*", "long long*", "void*[]"))


def _arg(a):
    """A kernel argument as a cffi pointer to its value."""
    if isinstance(a, GpuBuffer):
        return source.ffi.new(_U64, a.ptr)
    if a is None:
        return source.ffi.new(_U64, 0)
    if isinstance(a, I32):
        return source.ffi.new(_I32, a)
    if isinstance(a, int):
        return source.ffi.new(_I64, a)
    return a  # a parameter struct, already a cffi pointer


class GpuDevice:
    """Device ``index`` of a driver: its limits, stream, allocator and kernels (compiled on first use).
    ``plans`` holds what the ops layer works out once per kernel and shapes (see ``ops.launch``)."""

    def __init__(self, driver: Driver, index: int, name: str):
        self.driver, self.index, self.name = driver, index, name
        driver.activate(index)
        self.limits = driver.limits(index)
        self.arch = driver.arch(index)
        self.stream = driver.stream()
        self.allocator = Allocator(driver, name, self.limits.total_mem, index)
        self.plans: dict = {}
        self._module = None
        self._functions: dict[str, object] = {}
        self._load = threading.Lock()  # the module is compiled and loaded once, whichever threads ask at once

    def function(self, name: str):
        fn = self._functions.get(name)
        if fn is None:
            with self._load:
                fn = self._functions.get(name)
                if fn is None:
                    fn = self._functions[name] = self.driver.function(self._loaded(), name)
        return fn

    def kernel_name(self, fn) -> str | None:
        """The name of a kernel function this device has handed out (None for another)."""
        return next((name for name, f in self._functions.items() if f == fn), None)

    def _loaded(self):
        if self._module is None:
            try:
                image = source.compile_cached(self.driver.compiler, source.kernel_source(), self.arch)
            except CompileError as e:
                raise CompileError(f"compiling the kernels of {self.name} ({self.arch}) failed: {e}") from None
            self.driver.activate(self.index)
            self._module = self.driver.load(image)
        return self._module

    def check_launch(self, name: str, grid: tuple, block: tuple) -> None:
        """Refuse, naming the kernel, a launch beyond this device's limits (before the driver does, vaguely)."""
        lim, (bx, by, bz), (gx, gy, gz) = self.limits, block, grid
        (mbx, mby, mbz), (mgx, mgy, mgz) = lim.max_block, lim.max_grid
        if bx * by * bz > lim.max_threads or bx > mbx or by > mby or bz > mbz or gx > mgx or gy > mgy or gz > mgz \
                or min(gx, gy, gz, bx, by, bz) < 1:
            raise GpuError(f"launch of kernel {name!r} with grid {grid} and block {block} exceeds the limits of "
                           f"{self.name}: at most {lim.max_threads} threads per block, block {lim.max_block}, "
                           f"grid {lim.max_grid}")

    def launch(self, name: str, grid: tuple, block: tuple, *args) -> None:
        """Queue kernel ``name`` on this device's stream (asynchronous). ``args``: buffers, None (a null
        pointer), ints (``long long``; :class:`I32` for ``int``) or cffi pointers to parameter structs."""
        self.check_launch(name, grid, block)
        values = [_arg(a) for a in args]  # what the void*[] points at: alive until the launch has copied it
        self.run(self.function(name), grid, block, source.ffi.new(_PARAMS, values))

    def run(self, fn, grid: tuple, block: tuple, params) -> None:
        """Queue a kernel function already checked against the limits, with its ``void*[]`` parameters."""
        self.driver.activate(self.index)
        self.driver.launch(fn, grid, block, params, self.stream)

    def grid_1d(self, n: int, block: int) -> tuple:
        """Blocks for ``n`` items: the kernels loop over the rest (grid-stride), so any n fits the grid limit."""
        return (max(1, min(-(-n // block), self.limits.max_grid[0], 65535 * 8)), 1, 1)

    def upload(self, array: np.ndarray) -> GpuBuffer:
        buf = GpuBuffer(self, array.shape, array.dtype)
        if buf.size:
            self.driver.activate(self.index)
            self.driver.htod(buf.ptr, np.ascontiguousarray(array), self.stream)
        return buf

    def download(self, buf: GpuBuffer) -> np.ndarray:
        out = np.empty(buf.shape, buf.dtype)
        if buf.size:
            self.driver.activate(self.index)
            self.driver.dtoh(out, buf.ptr, self.stream)  # waits for the stream
        return out

    def synchronize(self) -> None:
        self.driver.activate(self.index)
        self.driver.sync(self.stream)
