"""The driver: what the host layer asks of a vendor (CUDA, HIP), as a typed protocol, and the helpers both
vendor drivers are built from.

:class:`Driver` is the whole contract: the host layer (``runtime``, ``ops``, ``backend``) calls nothing else,
so a test can put any object that has these methods underneath (the vendors' drivers over the emulator's
stand-in libraries, in their tests). :class:`VendorDriver` implements the calls that CUDA's driver API and
HIP make the same way, from a table of the vendor's names (:class:`VendorCalls`).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple, Protocol, runtime_checkable

from . import source
from .blas import Blas, BlasNames
from .errors import GpuError, OutOfMemoryError

if TYPE_CHECKING:
    import numpy as np
    from cffi import FFI


class Limits(NamedTuple):
    max_threads: int            # threads per block
    max_block: tuple            # per axis
    max_grid: tuple             # blocks per axis
    total_mem: int              # bytes


class Compiler(Protocol):
    """A run-time compiler (NVRTC, hiprtc): kernel source to a loadable image for one target."""

    version: str                # e.g. "nvrtc13.0": part of the disk cache's key

    def compile(self, source: str, arch: str) -> bytes: ...


@runtime_checkable
class Driver(Protocol):
    """A vendor's device API as the host layer uses it. Device pointers are ints; ``stream``, module and
    function handles are opaque. Every method raises :class:`GpuError` (``OutOfMemoryError`` from ``alloc``)
    naming the failed call; ``activate(index)`` comes before any call that works on device ``index``."""

    name: str                   # "cuda", "rocm"
    compiler: Compiler
    blas: Blas | None           # strided-batched GEMM (cuBLAS, rocBLAS); None: matmul runs the tiled kernel

    def device_count(self) -> int: ...
    def device_name(self, index: int) -> str: ...
    def arch(self, index: int) -> str: ...          # what ``compiler.compile`` builds for device ``index``
    def limits(self, index: int) -> Limits: ...
    def activate(self, index: int) -> None: ...     # device ``index`` current in the calling thread
    def alloc(self, nbytes: int) -> int: ...
    def free(self, ptr: int) -> None: ...
    def stream(self) -> object: ...                 # a new non-blocking stream on the current device
    def htod(self, ptr: int, array: np.ndarray, stream) -> None: ...   # queued; ``array`` may die after
    def dtoh(self, array: np.ndarray, ptr: int, stream) -> None: ...   # waits for the stream
    def sync(self, stream) -> None: ...
    def load(self, image: bytes) -> object: ...     # a module, on the current device
    def function(self, module, name: str) -> object: ...
    def launch(self, fn, grid: tuple, block: tuple, params, stream) -> None: ...  # params: a cffi ``void*[]``


def dlopen_first(ffi: FFI, names: Iterable[str], missing: str | None = None):
    """The first of ``names`` that ``ffi.dlopen`` opens; if none does, OSError(``missing``), or None
    when ``missing`` is None (an optional library, such as a BLAS)."""
    for name in names:
        try:
            return ffi.dlopen(name)
        except OSError:
            pass
    if missing is None:
        return None
    raise OSError(missing)


def declare(*cdefs: str) -> tuple[FFI, dict[str, int]]:
    """A vendor's FFI (cffi, ABI mode) for its ``cdefs``, with the kernels' parameter structs; and every
    enumerator the cdefs declare, by name: the constants a vendor module uses are declared once, in its cdef,
    where the ABI tests check them against the vendor's headers."""
    from cffi import FFI

    ffi = FFI()
    ffi.include(source.ffi)
    for cdef in cdefs:
        ffi.cdef(cdef)
    enums = [ffi.typeof(name) for name in ffi.list_types()[0]]
    return ffi, {k: v for t in enums if t.kind == "enum" for k, v in t.relements.items()}


class VendorCalls(NamedTuple):
    """One vendor's names for the calls that CUDA's driver API and HIP shape alike (a status returned, results
    written through a pointer), with the C types of what they write."""

    ptr: str            # the device pointer type: "CUdeviceptr" (an integer) or "void*"
    alloc: str          # (ptr*, size)
    free: str           # (ptr)
    htod: str           # (dst ptr, host src, size, stream)
    dtoh: str           # (host dst, src ptr, size, stream)
    stream: str         # (stream*, flags)
    stream_type: str
    sync: str           # (stream)
    load: str           # (module*, image)
    module_type: str
    function: str       # (function*, module, name)
    function_type: str
    launch: str         # (function, grid x, y, z, block x, y, z, shared bytes, stream, params, extra)
    out_of_memory: int  # the status of a failed allocation
    attributes: tuple   # device attributes: max threads per block, max block (x, y, z), max grid (x, y, z)


class VendorDriver(ABC):
    """A :class:`Driver` over a vendor library opened with cffi (``lib``: the real one, or a stand-in with the
    same names), and its BLAS library where one opened (``blas_lib``, or None). Subclasses give the vendor's
    :class:`VendorCalls` and ``BlasNames``, and what differs: error names, making a device current, device
    attributes, memory size, and the device queries."""

    calls: VendorCalls
    blas_names: BlasNames
    name: str

    def __init__(self, ffi: FFI, lib, compiler: Compiler, blas_lib=None):
        self.ffi, self.lib, self.compiler = ffi, lib, compiler
        self.blas = Blas(ffi, blas_lib, self.blas_names) if blas_lib is not None else None
        self._thread = threading.local()  # the vendor keeps the current device per host thread: so do we
        self._launch = getattr(lib, self.calls.launch)  # looked up once: it is on every op's path

    # -- what each vendor supplies (besides the device queries of the protocol)
    @abstractmethod
    def device_count(self) -> int: ...

    @abstractmethod
    def device_name(self, index: int) -> str: ...

    @abstractmethod
    def arch(self, index: int) -> str: ...

    @abstractmethod
    def error_name(self, status: int) -> str:
        """The vendor's name for error ``status``."""

    @abstractmethod
    def make_current(self, index: int) -> None:
        """Make device ``index`` current in the calling thread."""

    @abstractmethod
    def attribute(self, attr: int, index: int) -> int:
        """Device attribute ``attr`` (the vendor's enum) of device ``index``."""

    @abstractmethod
    def total_memory(self, index: int) -> int:
        """Bytes of memory of device ``index``."""

    # -- shared
    def check(self, status: int, call: str, detail: str = "") -> None:
        """Raise the error for a failed call (``status`` nonzero) naming it, its error and ``detail``."""
        if status:
            exc = OutOfMemoryError if status == self.calls.out_of_memory else GpuError
            raise exc(f"{call} failed: {self.error_name(status)}{detail}")

    def get(self, call: str, ctype: str, *args):
        """``call(out, *args)`` for a result written through ``out`` (of C type ``ctype``): the result."""
        out = self.ffi.new(ctype)
        self.check(getattr(self.lib, call)(out, *args), call)
        return out[0]

    def limits(self, index: int) -> Limits:
        threads, block, grid = self.calls.attributes
        return Limits(self.attribute(threads, index), tuple(self.attribute(a, index) for a in block),
                      tuple(self.attribute(a, index) for a in grid), self.total_memory(index))

    def activate(self, index: int) -> None:
        if getattr(self._thread, "current", None) != index:  # a new thread has none
            self.make_current(index)
            self._thread.current = index

    def alloc(self, nbytes: int) -> int:
        c = self.calls
        out = self.ffi.new(f"{c.ptr}*")
        self.check(getattr(self.lib, c.alloc)(out, nbytes), c.alloc, f" ({nbytes} bytes)")
        return int(self.ffi.cast("uintptr_t", out[0]))

    def free(self, ptr: int) -> None:
        c = self.calls
        self.check(getattr(self.lib, c.free)(self.ffi.cast(c.ptr, ptr)), c.free)

    def stream(self):
        return self.get(self.calls.stream, f"{self.calls.stream_type}*", 1)  # 1: non-blocking (no sync with stream 0)

    def htod(self, ptr: int, array: np.ndarray, stream) -> None:
        # pageable host memory: the driver stages it before returning, so the array may die right after
        c, ffi = self.calls, self.ffi
        status = getattr(self.lib, c.htod)(ffi.cast(c.ptr, ptr), ffi.from_buffer(array), array.nbytes, stream)
        self.check(status, c.htod)

    def dtoh(self, array: np.ndarray, ptr: int, stream) -> None:
        c, ffi = self.calls, self.ffi
        status = getattr(self.lib, c.dtoh)(ffi.from_buffer(array), ffi.cast(c.ptr, ptr), array.nbytes, stream)
        self.check(status, c.dtoh)
        self.sync(stream)

    def sync(self, stream) -> None:
        self.check(getattr(self.lib, self.calls.sync)(stream), self.calls.sync)

    def load(self, image: bytes):
        c = self.calls
        module = self.ffi.new(f"{c.module_type}*")
        self.check(getattr(self.lib, c.load)(module, image), c.load, f" (an image of {self.compiler.version})")
        return module[0]

    def function(self, module, name: str):
        c = self.calls
        fn = self.ffi.new(f"{c.function_type}*")
        self.check(getattr(self.lib, c.function)(fn, module, name.encode()), c.function, f" ({name})")
        return fn[0]

    def launch(self, fn, grid: tuple, block: tuple, params, stream) -> None:
        status = self._launch(fn, *grid, *block, 0, stream, params, self.ffi.NULL)
        if status:
            self.check(status, self.calls.launch, f" (grid {grid}, block {block})")
