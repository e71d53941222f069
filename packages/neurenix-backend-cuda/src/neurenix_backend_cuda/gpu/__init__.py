"""What the CUDA and ROCm backends share: the kernel source, its disk cache, the device runtime (caching
allocator, one stream per device, launches checked against device limits) and the kernel table.

A vendor module (``neurenix_backend_cuda.cuda``, ``neurenix_backend_rocm.hip``) supplies a driver object:
the few calls below, each one vendor call deep. Tests swap the vendor libraries underneath it for the CPU
stand-in of ``neurenix_backend_cuda.emulator``; nothing above the driver knows.
"""

from __future__ import annotations

import hashlib
from importlib import resources

from cffi import FFI


class GpuError(RuntimeError):
    """A vendor call failed; the message names the call, the error, and what was asked."""


class OutOfMemoryError(GpuError):
    """The device could not allocate (after the caching allocator gave its cache back)."""


class CompileError(GpuError):
    """NVRTC or hiprtc rejected a kernel source; the message holds the compiler's log."""


def dlopen_first(ffi: FFI, names: list[str], missing: str | None = None):
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


def kernel_source() -> str:
    """The kernel source every backend compiles: the compatibility header, then the kernels."""
    d = resources.files(__package__).joinpath("..", "kernels")
    return d.joinpath("nx_compat.h").read_text() + "\n" + d.joinpath("nx_kernels.cu").read_text()


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:16]


# The parameter structs of nx_kernels.cu, mirrored for cffi (all fields 8 bytes: no padding to disagree on).
ffi = FFI()
ffi.cdef("""
typedef struct { long long n, ndim; long long shape[8]; long long stride[4][8]; long long offset[4];
                 double fscal[4]; long long iscal[4]; } nx_geo;
typedef struct { long long nout, nred, nk, nr, offset; long long kshape[8], kstride[8], rshape[8], rstride[8]; } nx_red;
typedef struct { long long batch, m, n, k, sa, sb; } nx_mm;
typedef struct { long long n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow; } nx_win;
""")
MAXDIM, BLOCK, TILE = 8, 256, 16  # as in nx_compat.h
