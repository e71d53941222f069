"""A CPU stand-in for a GPU and its vendor libraries, for tests on machines without a GPU.

A backend's own host code runs unchanged on top of it: each vendor's tests wrap this emulator in stand-ins
with the vendor's names and calling conventions (fake libcuda, NVRTC and cuBLAS with the CUDA backend's tests,
fake libamdhip64, hiprtc and rocBLAS with the ROCm backend's), so the backend calls ``cuMemAlloc_v2``,
``nvrtcCompileProgram``, ``cuLaunchKernel`` and the rest with the same cffi arguments it gives the real
libraries. Underneath, "device memory" is host memory, the "compiler" builds the same kernel source for the
host with the C++ compiler and ``host.h`` (CUDA built-ins, threads as fibers), a launch runs every block's
threads on the CPU, and a BLAS GEMM is NumPy over that memory (:mod:`.blas`). Devices report the limits given
to :class:`Emulator`, so tests can provoke the errors a real GPU gives.

Threads: a real device runs the work of its stream one item at a time, in the order it was queued, whichever
host thread queued it. The emulator runs each launch, copy and GEMM at once in the calling thread, so one lock
(:attr:`Emulator.lock`) makes them one at a time too; the host build of the kernels keeps the CUDA built-ins
(threadIdx, the fibers, __shared__ arrays) in globals, which two launches at once would corrupt. What a vendor
keeps per host thread (CUDA's current context, HIP's current device) is :meth:`Emulator.current`.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import tempfile
import threading
from importlib import resources

import numpy as np
from cffi import FFI

_ffi = FFI()
_ffi.cdef("""
int nx_launch(void (*)(void**), void**, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned);
void* nx_kernel(const char* name);
""")
_KERNEL = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(')


def address(p) -> int:
    """A cffi pointer (or an int) as an int."""
    return int(_ffi.cast("uintptr_t", p))


def string(p) -> str:
    """A ``const char*`` argument: Python bytes, or a cffi pointer."""
    return p.decode() if isinstance(p, bytes) else _ffi.string(_ffi.cast("char*", address(p))).decode()


def write(out, data: bytes) -> None:
    """Copy ``data`` to the memory an out-pointer argument points at."""
    _ffi.memmove(_ffi.cast("char*", address(out)), data, len(data))


class Emulator:
    """Emulated devices: memory (with a capacity, to provoke out-of-memory), a host compiler, modules and
    launches. Module and function handles are ints; so are device addresses."""

    def __init__(self, devices: int = 1, memory: int = 1 << 30, max_threads: int = 1024,
                 max_grid: tuple = (2**31 - 1, 65535, 65535), cxx: str = os.environ.get("CXX", "c++")):
        self.devices, self.capacity, self.max_threads, self.max_grid, self.cxx = devices, memory, max_threads, \
            max_grid, cxx
        self.max_block = (max_threads, max_threads, 64)
        self.blocks: dict[int, object] = {}
        self.owners: dict[int, int | None] = {}  # address -> the device it was allocated on
        self.modules: dict[int, tuple] = {}      # handle -> (host library, device)
        self.functions: dict[int, tuple] = {}    # handle -> (host library, trampoline, device)
        self.used = 0
        self.launches = 0
        self.lock = threading.RLock()  # the device's one queue: launches, copies, GEMMs and memory, one at a time
        self._handles = itertools.count(1)
        self._thread = threading.local()
        self._tmp = tempfile.TemporaryDirectory(prefix="nx-emulator-")

    def current(self) -> int | None:
        """The calling thread's current device (None until one is made current in this thread)."""
        return getattr(self._thread, "device", None)

    def make_current(self, device: int | None) -> None:
        self._thread.device = device

    # -- memory
    def alloc(self, size: int, device: int | None = None) -> int | None:
        """The address of ``size`` new bytes on ``device``; None when they do not fit."""
        with self.lock:
            if self.used + size > self.capacity:
                return None
            block = _ffi.new("char[]", size)
            self.blocks[address(block)] = block
            self.owners[address(block)] = device
            self.used += size
            return address(block)

    def free(self, addr: int) -> None:
        with self.lock:
            self.used -= len(self.blocks.pop(addr))

    def array(self, addr: int, dtype, shape: tuple, strides: tuple):
        """Device memory at ``addr`` as a writable NumPy array (``strides`` in elements, >= 0), or None
        where it reaches outside the allocation holding ``addr`` (a GPU would fault on the address)."""
        dtype = np.dtype(dtype)
        with self.lock:
            start = next((s for s, b in self.blocks.items() if s <= addr < s + len(b)), None)
            if start is None or min(strides) < 0:
                return None
            block, offset = self.blocks[start], addr - start
        extent = sum((n - 1) * s for n, s in zip(shape, strides)) + 1 if min(shape) > 0 else 0
        if offset % dtype.itemsize or offset + extent * dtype.itemsize > len(block):
            return None
        base = np.frombuffer(_ffi.buffer(block), dtype, (len(block) - offset) // dtype.itemsize, offset)
        return np.lib.stride_tricks.as_strided(base, shape, tuple(s * dtype.itemsize for s in strides))

    def copy(self, dst: int, src: int, n: int) -> None:
        with self.lock:
            _ffi.memmove(_ffi.cast("char*", dst), _ffi.cast("char*", src), n)

    # -- code
    def compile(self, source: str) -> tuple[bool, str, bytes]:
        """Build ``source`` into a host shared library: (ok, log, image)."""
        names = _KERNEL.findall(self._preprocess(source))
        header = resources.files(__package__).joinpath("host.h").read_text()
        lookup = "".join(f'  if (!strcmp(name, "{n}")) return (void*)nx_tramp_{n};\n' for n in names)
        unit = (header + "\n" + source + "\n" + "".join(f"NX_TRAMPOLINE({n})\n" for n in names)
                + f'extern "C" void* nx_kernel(const char* name) {{\n{lookup}  return 0;\n}}\n')
        fd, path = tempfile.mkstemp(suffix=".cpp", dir=self._tmp.name)
        with os.fdopen(fd, "w") as f:
            f.write(unit)
        so = path[:-4] + ".so"
        r = subprocess.run([self.cxx, "-std=c++17", "-O1", "-shared", "-fPIC", "-w", "-o", so, path],
                           capture_output=True, text=True)
        if r.returncode:
            return False, r.stderr, b""
        with open(so, "rb") as f:
            return True, r.stderr, f.read()

    def _preprocess(self, source: str) -> str:
        r = subprocess.run([self.cxx, "-E", "-P", "-x", "c++", "-"], input=source, capture_output=True, text=True)
        return r.stdout if r.returncode == 0 else source

    def load(self, image: bytes, device: int | None) -> int:
        """A module handle: ``image`` (from :meth:`compile`) loaded on ``device``."""
        fd, path = tempfile.mkstemp(suffix=".so", dir=self._tmp.name)
        with os.fdopen(fd, "wb") as f:
            f.write(image)
        handle = next(self._handles)
        self.modules[handle] = (_ffi.dlopen(path), device)
        return handle

    def function(self, module: int, name: str) -> int | None:
        """The handle of kernel ``name`` of a module (on the module's device), or None if it has none."""
        lib, device = self.modules[module]
        tramp = lib.nx_kernel(name.encode())
        if tramp == _ffi.NULL:
            return None
        handle = next(self._handles)
        self.functions[handle] = (lib, _ffi.cast("void(*)(void**)", tramp), device)
        return handle

    def launch(self, fn: int, grid: tuple, block: tuple, params: int) -> bool:
        """Run kernel ``fn`` over ``grid`` x ``block`` with a ``void**`` of arguments at address ``params``;
        False (nothing run) where the launch exceeds the device's limits."""
        lib, tramp, _ = self.functions[fn]
        if block[0] * block[1] * block[2] > self.max_threads or any(b > m for b, m in zip(block, self.max_block)) \
                or any(g > m for g, m in zip(grid, self.max_grid)):
            return False
        with self.lock:
            self.launches += 1
            return lib.nx_launch(tramp, _ffi.cast("void**", params), *grid, *block) == 0
