"""C generated at run time: compiled once with cffi, kept on disk keyed by a hash of its source.

The cache lives in ``$NEURENIX_CACHE_DIR/cpu-c``, else ``$XDG_CACHE_HOME/neurenix/cpu-c``, else
``~/.cache/neurenix/cpu-c``. Where it cannot be written, modules are built in a temporary directory (and
rebuilt by the next process). A module is built under a temporary name and renamed into place, so processes
sharing the cache never load a half-written library.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import pathlib
import sys
import sysconfig
import tempfile
import threading

import cffi

#: bumped when the generated code's meaning changes, so older cached libraries are not loaded
VERSION = 1
# -ffp-contract=off: a fused a * b + c must round the product as the separate kernels do (no FMA), so a
# fused chain is bit for bit the chain of kernels. -fno-math-errno as in the kernels' own build.
CFLAGS = ["-O2", "-std=c99", "-fno-math-errno", "-ffp-contract=off", "-fopenmp",
          f"-march={os.environ.get('NEURENIX_CPU_MARCH', 'native')}"]
LDFLAGS = ["-fopenmp"]

#: how many modules this process compiled (tests read it to see the disk cache hit)
stats = {"compiled": 0, "loaded": 0}
_lock = threading.Lock()
_loaded: dict[str, object] = {}


def cache_dir() -> pathlib.Path:
    """Where compiled modules are kept (see the module docstring)."""
    root = os.environ.get("NEURENIX_CACHE_DIR")
    if root:
        return pathlib.Path(root) / "cpu-c"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(xdg) / "neurenix" / "cpu-c"


def _key(cdef: str, source: str) -> str:
    text = "\0".join([str(VERSION), cdef, source, " ".join(CFLAGS), sys.version, cffi.__version__,
                      sysconfig.get_platform(), os.environ.get("CC", "")])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def load(cdef: str, source: str):
    """The module (its ``ffi`` and ``lib``) declaring ``cdef`` with C ``source``: from this process, the disk
    cache, or compiled now (into the cache, or a temporary directory where the cache is not writable)."""
    name = f"_nx_fused_{_key(cdef, source)}"
    with _lock:
        if name in _loaded:
            return _loaded[name]
        suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
        cached = cache_dir() / (name + suffix)
        if cached.is_file():
            try:
                lib = _import(name, cached)
                stats["loaded"] += 1
            except ImportError:  # damaged or built for another machine: build it again
                lib = None
            if lib is not None:
                _loaded[name] = lib
                return lib
        lib = _build(name, cdef, source, cached)
        _loaded[name] = lib
        return lib


def _build(name: str, cdef: str, source: str, cached: pathlib.Path):
    ffi = cffi.FFI()
    ffi.cdef(cdef)
    ffi.set_source(name, source, extra_compile_args=CFLAGS, extra_link_args=LDFLAGS)
    with tempfile.TemporaryDirectory(prefix="neurenix-jit-") as tmp:
        built = pathlib.Path(ffi.compile(tmpdir=tmp, verbose=False))
        stats["compiled"] += 1
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            part = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
            part.write_bytes(built.read_bytes())
            os.replace(part, cached)
            return _import(name, cached)
        except OSError:  # the cache is not writable: load the library from the temporary directory
            return _import(name, built)


def _import(name: str, path: pathlib.Path):
    # the library is mapped when imported; the file may then go (a temporary directory) without harm
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
