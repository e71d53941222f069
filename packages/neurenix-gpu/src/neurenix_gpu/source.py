"""The kernel source every GPU backend compiles (``kernels/``), its disk cache, and the layout of its
parameter structs for cffi."""

from __future__ import annotations

import hashlib
import os
import tempfile
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from cffi import FFI

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
