"""One GPU as the kernels see it: compiled module (disk-cached), caching allocator, stream, checked launches."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import CompileError, GpuError, OutOfMemoryError, ffi, kernel_source, source_hash


class Limits(NamedTuple):
    max_threads: int            # threads per block
    max_block: tuple            # per axis
    max_grid: tuple             # blocks per axis
    total_mem: int              # bytes


def cache_dir() -> Path:
    """Where compiled kernels are kept: $NEURENIX_KERNEL_CACHE, else ~/.cache/neurenix/kernels."""
    return Path(os.environ.get("NEURENIX_KERNEL_CACHE") or Path.home() / ".cache" / "neurenix" / "kernels")


def compile_cached(compiler, source: str, arch: str, directory: Path | None = None) -> bytes:
    """``compiler.compile(source, arch)``, kept on disk by (source hash, arch, compiler version)."""
    directory = directory or cache_dir()
    path = directory / f"{source_hash(source)}-{arch}-{compiler.version}.bin"
    if path.exists():
        return path.read_bytes()
    image = compiler.compile(source, arch)
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory)  # write then rename: concurrent processes never read half a file
    with os.fdopen(fd, "wb") as f:
        f.write(image)
    os.replace(tmp, path)
    return image


def _round(nbytes: int) -> int:
    step = 512 if nbytes <= 1 << 20 else 1 << 20
    return max(step, -(-nbytes // step) * step)


class Allocator:
    """Device memory by rounded size, kept for reuse when buffers die. Reuse needs no synchronization:
    all work of a device is ordered on its one stream (whichever host thread queues it), so a later kernel
    cannot overtake an earlier reader. The cache is shared by threads, behind a lock; re-entrant, since a
    buffer the garbage collector frees during an allocation comes back through :meth:`release`."""

    def __init__(self, driver, name: str, total: int, index: int = 0):
        self.driver, self.name, self.total, self.index = driver, name, total, index
        self.free_blocks: dict[int, list[int]] = {}
        self.in_use = self.cached = 0
        self.lock = threading.RLock()

    def alloc(self, nbytes: int) -> tuple[int, int]:
        size = _round(nbytes)
        with self.lock:
            blocks = self.free_blocks.get(size)
            if blocks:
                self.cached -= size
                ptr = blocks.pop()
            else:
                ptr = self._fresh(nbytes, size)
            self.in_use += size
            return ptr, size

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

    def __init__(self, allocator: Allocator, nbytes: int):
        self.allocator = allocator
        self.ptr, self.size = allocator.alloc(nbytes)

    def __del__(self):
        with contextlib.suppress(Exception):  # at interpreter shutdown the allocator may be gone first
            self.allocator.release(self.ptr, self.size)


class GpuBuffer:
    """A C-contiguous array in device memory. Buffers never change after their kernel: reshape shares memory."""

    __slots__ = ("device", "dtype", "mem", "shape", "size")

    def __init__(self, device: GpuDevice, shape: tuple, dtype: np.dtype, mem: Memory | None = None):
        self.device, self.shape, self.dtype = device, tuple(shape), np.dtype(dtype)
        self.size = int(np.prod(self.shape, dtype=np.int64))
        self.mem = mem or Memory(device.allocator, self.size * self.dtype.itemsize)

    @property
    def ptr(self) -> int:
        return self.mem.ptr

    def __repr__(self) -> str:
        return f"GpuBuffer(shape={self.shape}, dtype={self.dtype}, device={self.device.name})"


class I32(int):
    """A kernel argument declared ``int`` (4 bytes); plain ints go as ``long long``."""


def _arg(a):
    if isinstance(a, GpuBuffer):
        return ffi.new("unsigned long long*", a.ptr)
    if a is None:
        return ffi.new("unsigned long long*", 0)
    if isinstance(a, I32):
        return ffi.new("int*", a)
    if isinstance(a, int):
        return ffi.new("long long*", a)
    return a  # a parameter struct, already a cffi pointer


class GpuDevice:
    """Device ``index`` of a driver: its limits, stream, allocator and kernels (compiled on first use)."""

    def __init__(self, driver, index: int, name: str):
        self.driver, self.index, self.name = driver, index, name
        driver.activate(index)
        self.limits = driver.limits(index)
        self.arch = driver.arch(index)
        self.stream = driver.stream()
        self.allocator = Allocator(driver, name, self.limits.total_mem, index)
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

    def _loaded(self):
        if self._module is None:
            source = kernel_source()
            try:
                image = compile_cached(self.driver.compiler, source, self.arch)
            except CompileError as e:
                raise CompileError(f"compiling the kernels of {self.name} ({self.arch}) failed: {e}") from None
            self.driver.activate(self.index)
            self._module = self.driver.load(image)
        return self._module

    def launch(self, name: str, grid: tuple, block: tuple, *args) -> None:
        """Queue kernel ``name`` on this device's stream (asynchronous)."""
        lim = self.limits
        threads = block[0] * block[1] * block[2]
        if threads > lim.max_threads or any(b > m for b, m in zip(block, lim.max_block)) \
                or any(g > m for g, m in zip(grid, lim.max_grid)) or min(*grid, *block) < 1:
            raise GpuError(f"launch of kernel {name!r} with grid {grid} and block {block} exceeds the limits of "
                           f"{self.name}: at most {lim.max_threads} threads per block, block {lim.max_block}, "
                           f"grid {lim.max_grid}")
        fn = self.function(name)
        params = [_arg(a) for a in args]
        self.driver.activate(self.index)
        self.driver.launch(fn, grid, block, ffi.new("void*[]", params), self.stream)

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
