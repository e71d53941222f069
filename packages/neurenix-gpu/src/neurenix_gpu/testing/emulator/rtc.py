"""A run-time compiler library that builds for the host: NVRTC and hiprtc take the same calls under two
prefixes (``nvrtcCreateProgram``, ``hiprtcCreateProgram``), so each vendor's tests make an :class:`Rtc` with
the vendor's prefix and statuses. A program's "code" (a cubin, a code object) is the host shared library that
:meth:`Emulator.load` opens."""

from __future__ import annotations

from typing import ClassVar

from cffi import FFI

from . import Emulator, address, string, write

_ffi = FFI()


class _Program:
    def __init__(self, source: str):
        self.source, self.log, self.image = source, "", b""


class Rtc:
    """Programs created, compiled (by :meth:`Emulator.compile`), their logs and images read back, under the
    library's names: ``<prefix>CreateProgram`` and the rest (:attr:`CALLS`), ``<prefix>Get<code>Size`` and
    ``<prefix>Get<code>`` for each name in ``code`` ("CUBIN", "PTX"; "Code"). ``statuses``: the library's
    status enum (name -> value), holding ``success`` and ``compilation_error``, the statuses the calls
    return; ``archs``: what it reports as supported targets."""

    CALLS: ClassVar[dict[str, str]] = {"Version": "version", "GetNumSupportedArchs": "num_supported_archs",
             "GetSupportedArchs": "supported_archs", "CreateProgram": "create_program",
             "CompileProgram": "compile_program", "DestroyProgram": "destroy_program",
             "GetProgramLogSize": "log_size", "GetProgramLog": "log", "GetErrorString": "error_string"}

    def __init__(self, emulator: Emulator, prefix: str, code: tuple[str, ...], version: tuple[int, int],
                 statuses: dict[str, int], success: str, compilation_error: str, archs: tuple[int, ...] = ()):
        self.prefix, self.calls = prefix, dict(self.CALLS)
        for name in code:
            self.calls.update({f"Get{name}Size": "code_size", f"Get{name}": "code"})
        self.emu, self.version_, self.archs = emulator, version, archs
        self.names = {v: k for k, v in statuses.items()}
        self.success, self.compilation_error = statuses[success], statuses[compilation_error]
        self.programs: dict[int, _Program] = {}

    def __getattr__(self, name: str):
        """The library's call ``name`` (only attributes not found otherwise come here)."""
        call = name[len(self.prefix):] if name.startswith(self.__dict__.get("prefix", "\0")) else None
        if call not in self.__dict__.get("calls", {}):
            raise AttributeError(name)
        return getattr(self, self.calls[call])

    def _p(self, prog) -> _Program:
        return self.programs[address(prog)]

    def version(self, major, minor):
        major[0], minor[0] = self.version_
        return self.success

    def num_supported_archs(self, n):
        n[0] = len(self.archs)
        return self.success

    def supported_archs(self, archs):
        archs[0:len(self.archs)] = list(self.archs)
        return self.success

    def create_program(self, prog, source, name, nheaders, headers, names):
        p = _Program(string(source))
        self.programs[id(p)] = p
        prog[0] = _ffi.cast("void*", id(p))
        return self.success

    def compile_program(self, prog, nopts, opts):
        p = self._p(prog)
        ok, p.log, p.image = self.emu.compile(p.source)
        return self.success if ok else self.compilation_error

    def destroy_program(self, prog):
        self.programs.pop(address(prog[0]), None)
        return self.success

    def log_size(self, prog, size):
        size[0] = len(self._p(prog).log.encode()) + 1
        return self.success

    def log(self, prog, out):
        write(out, self._p(prog).log.encode() + b"\0")
        return self.success

    def code_size(self, prog, size):
        size[0] = len(self._p(prog).image)
        return self.success

    def code(self, prog, out):
        write(out, self._p(prog).image)
        return self.success

    def error_string(self, status):
        self._err = _ffi.new("char[]", self.names.get(status, f"unknown status {status}").encode())
        return self._err
