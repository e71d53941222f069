"""The kernel source every GPU backend compiles (``kernels/``), its disk cache, and the layout of its
parameter structs for cffi."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import tempfile
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from cffi import FFI, CDefError

if TYPE_CHECKING:
    from .driver import Compiler

MAXDIM, BLOCK, TILE = 8, 256, 16  # NX_MAXDIM, NX_BLOCK, NX_TILE of nx_compat.h

# The parameter structs of nx_kernels.cu, mirrored for cffi (all fields 8 bytes: no padding to disagree on).
ffi = FFI()
ffi.cdef("""
typedef struct { long long n, ndim; long long shape[8]; long long stride[4][8]; long long offset[4];
                 double fscal[4]; long long iscal[4]; } nx_geo;
typedef struct { long long nout, nred, nk, nr, offset; long long kshape[8], kstride[8], rshape[8], rstride[8]; } nx_red;
typedef struct { long long batch, m, n, k, sa, sb; } nx_mm;
typedef struct { long long n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow; } nx_win;
typedef struct { long long n, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, groups; } nx_conv;
""")


def kernel_source() -> str:
    """The compatibility header, then the kernels: one translation unit for NVRTC, hiprtc and the emulator."""
    d = resources.files(__package__).joinpath("kernels")
    return d.joinpath("nx_compat.h").read_text() + "\n" + d.joinpath("nx_kernels.cu").read_text()


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def cache_dir() -> Path:
    """Where compiled kernels are kept: $NEURENIX_KERNEL_CACHE, else ~/.cache/neurenix/kernels."""
    return Path(os.environ.get("NEURENIX_KERNEL_CACHE") or Path.home() / ".cache" / "neurenix" / "kernels")


def compile_cached(compiler: Compiler, source: str, arch: str, directory: Path | None = None) -> bytes:
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


class Param(NamedTuple):
    """One parameter of a kernel, as a launch's ``void*[]`` points at it."""

    size: int       # bytes of the value
    pointer: bool   # a device address
    written: bool   # a device address the kernel writes through (declared without ``const``)


# a kernel declaration; in a macro its name is pasted (``binary_##t``): the part before ``##`` names the family
_GLOBAL = re.compile(r"__global__\s+void\s+(\w+)((?:\s*##\s*\w+)*)\s*\(([^)]*)\)")
_SCALARS = {"int": 4, "unsigned": 4, "float": 4, "i64": 8, "u64": 8, "long long": 8, "double": 8}


def _param(decl: str) -> Param | None:
    """``const T* a`` -> Param; None for a type whose size the host cannot tell (a template's ``T`` by value)."""
    ctype = decl.rsplit(None, 1)[0].strip()
    if "*" in ctype:
        return Param(8, True, not ctype.startswith("const"))
    if ctype in _SCALARS:
        return Param(_SCALARS[ctype], False, False)
    try:
        return Param(ffi.sizeof(ctype), False, False)  # a parameter struct (nx_geo...)
    except CDefError:
        return None


@functools.lru_cache(maxsize=4)
def _signatures(text: str) -> tuple[dict, list]:
    exact, families = {}, []
    for name, pasted, params in _GLOBAL.findall(text):
        decls = [_param(p) for p in params.split(",") if p.strip()]
        sig = None if None in decls else tuple(decls)
        if pasted:
            families.append((name, sig))
        else:
            exact[name] = sig
    families.sort(key=lambda f: -len(f[0]))  # the longest family name first: ``argreduce_`` before ``reduce_``
    return exact, families


@functools.cache
def _installed_source() -> str:
    return kernel_source()


def kernel_params(name: str, text: str | None = None) -> tuple[Param, ...] | None:
    """The parameters of kernel ``name`` of the kernel source (``text``, by default :func:`kernel_source`),
    read from its declaration; None where the kernel is unknown or a parameter's size cannot be told."""
    exact, families = _signatures(_installed_source() if text is None else text)
    if name in exact:
        return exact[name]
    return next((sig for family, sig in families if name.startswith(family)), None)
