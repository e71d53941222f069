"""Run-time compilers: NVRTC and hiprtc take the same calls under two prefixes (``nvrtcCreateProgram``,
``hiprtcCreateProgram``...), so one class drives both; a vendor gives its prefix, options and code getters."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from .errors import CompileError

if TYPE_CHECKING:
    from cffi import FFI

SOURCE_NAME = b"nx_kernels.cu"


class RtcCompiler(ABC):
    """A :class:`~neurenix_gpu.driver.Compiler` over an opened NVRTC-style library (``lib``, declared in ``ffi``
    with the type ``<prefix>Program``)."""

    title: str      # for messages: "NVRTC", "hiprtc"
    prefix: str     # of the library's calls: "nvrtc", "hiprtc"

    def __init__(self, ffi: FFI, lib):
        self.ffi, self.lib = ffi, lib
        major, minor = ffi.new("int*"), ffi.new("int*")
        self.call("Version")(major, minor)
        self.major, self.minor = major[0], minor[0]
        self.version = f"{self.prefix}{self.major}.{self.minor}"  # part of the disk cache's key

    @abstractmethod
    def options(self, arch: str) -> list[str]:
        """The compiler options that build for ``arch``."""

    @abstractmethod
    def code_calls(self, arch: str) -> tuple[str, str]:
        """The calls (without prefix) that give the size and the bytes of the compiled code for ``arch``."""

    def call(self, name: str):
        return getattr(self.lib, self.prefix + name)

    def compile(self, source: str, arch: str) -> bytes:
        ffi = self.ffi
        prog = ffi.new(f"{self.prefix}Program*")
        status = self.call("CreateProgram")(prog, source.encode(), SOURCE_NAME, 0, ffi.NULL, ffi.NULL)
        if status:
            raise CompileError(f"{self.prefix}CreateProgram failed: {self._error(status)}")
        try:
            opts = [ffi.new("char[]", o.encode()) for o in self.options(arch)]
            status = self.call("CompileProgram")(prog[0], len(opts), ffi.new("char*[]", opts))
            if status:
                log = self._read(prog[0], "GetProgramLogSize", "GetProgramLog").rstrip(b"\0")
                raise CompileError(f"{self.title} {self.major}.{self.minor} could not compile "
                                   f"{SOURCE_NAME.decode()} for {arch} ({self._error(status)}):\n"
                                   f"{log.decode(errors='replace')}")
            return self._read(prog[0], *self.code_calls(arch))
        finally:
            self.call("DestroyProgram")(prog)

    def _read(self, prog, size_call: str, data_call: str) -> bytes:
        """What a size call and a data call of the library give for ``prog`` (a log, the code)."""
        size = self.ffi.new("size_t*")
        self.call(size_call)(prog, size)
        data = self.ffi.new("char[]", size[0])
        self.call(data_call)(prog, data)
        return bytes(self.ffi.buffer(data, size[0]))

    def _error(self, status: int) -> str:
        return self.ffi.string(self.call("GetErrorString")(status)).decode()
