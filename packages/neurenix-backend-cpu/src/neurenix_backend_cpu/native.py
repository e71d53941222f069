"""The compiled kernels (cffi, API mode) and what every kernel family shares.

Each family module (elementwise, reductions, softmax, norm, windows, linalg, optim) takes the C path only
for what C does faster and hands anything else to NumPy's kernel (:data:`NUMPY`), so no non-contiguous
or wrongly typed buffer reaches C. Pointers come from :func:`ptr` (``ffi.from_buffer``, a fraction of a
microsecond; ``ndarray.ctypes`` costs several).
"""

from __future__ import annotations

import os

import numpy as np

from neurenix.backend import reference
from neurenix.backend import threads as host_threads


def _wait_policy() -> None:
    """How idle OpenMP threads wait, set before libgomp loads (it reads the environment then; a user's
    OMP_WAIT_POLICY or GOMP_SPINCOUNT is kept). Where NumPy's OpenBLAS runs its jobs on our threads
    (:func:`share_blas_pool`), they spin a while before sleeping (GOMP_SPINCOUNT=100000 under libgomp's default
    policy): waking a sleeping thread costs this 2-core VM about a millisecond, and a ProtoNets Conv-4 training
    step took 220-271 ms on two threads that slept at once, 121-123 ms spinning first, 180-186 ms on one thread.
    Where BLAS keeps threads of its own, ours sleep at once (PASSIVE): spinning, they took its cores (Conv-4 on
    two threads: 460 ms spinning, 167 ms sleeping). A libgomp loaded before ours (PyTorch's) keeps its own."""
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return
    if os.environ.get("NEURENIX_CPU_SHARE_BLAS_POOL") != "0" and host_threads.BLAS.can_share_pool():
        os.environ["GOMP_SPINCOUNT"] = "100000"
    else:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


_wait_policy()

#: the modules a portable wheel carries beside the baseline ``_kernels``, best first (see _build.py), and the
#: -march each was built for; a build from source has ``_kernels`` alone, for its own machine
FASTER = (("_kernels_v4", "x86-64-v4"), ("_kernels_v3", "x86-64-v3"))


def _load():
    """(ffi, lib) of the best module this CPU runs: the baseline answers which (it runs anywhere)."""
    import importlib.util
    base = importlib.import_module("._kernels", __package__)
    for name, target in FASTER:
        if importlib.util.find_spec(f"{__package__}.{name}") is not None and base.lib.nx_cpu_runs(target.encode()):
            module = importlib.import_module(f".{name}", __package__)
            return module.ffi, module.lib
    return base.ffi, base.lib


try:
    ffi, lib = _load()
except ImportError as e:  # reported in neurenix.list_backends() as the reason the backend cannot run
    ffi = lib = None
    IMPORT_ERROR = f"its compiled kernels failed to load ({e}); reinstall neurenix-backend-cpu with a C compiler"
else:
    IMPORT_ERROR = None

#: the -march the loaded kernels were built for ("native" for a build from source)
TARGET = ffi.string(lib.nx_target()).decode() if lib is not None else None

#: core's NumPy kernels, completed with its compositions: every kernel's fallback where C does not apply
NUMPY = reference()

F32, F64, I64 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64)
SUFFIX = {F32: "f32", F64: "f64"}  # the dtypes C handles, and their functions' suffixes
ndarray = np.ndarray
ptr = ffi.from_buffer if ffi is not None else None
NULL = ffi.NULL if ffi is not None else None

#: threads the C kernels run on (``neurenix.set_num_threads`` sets it through :func:`set_num_threads`)
threads = lib.nx_get_num_threads() if lib is not None else 1


def set_num_threads(n: int) -> None:
    """Run the C kernels on ``n`` OpenMP threads, from whichever Python thread calls them."""
    global threads
    lib.nx_set_num_threads(n)
    threads = n


def fns(name: str) -> dict:
    """dtype -> the C function ``name`` for it."""
    return {dt: getattr(lib, f"{name}_{s}") for dt, s in SUFFIX.items()} if lib is not None else {}


def c_ready(*xs) -> bool:
    """Whether all are C-contiguous float arrays of one dtype, the only buffers C ever sees."""
    dt = xs[0].dtype if type(xs[0]) is ndarray else None
    return dt in SUFFIX and all(type(x) is ndarray and x.dtype is dt and x.flags.c_contiguous for x in xs)


def optional_ptr(x):
    """A pointer to ``x``, or NULL for None (an optional operand or an output not asked for)."""
    return NULL if x is None else ptr(x)


#: blocks up to this size are reused from the heap rather than mapped afresh (see nx_keep_freed_memory)
KEEP_FREED_BYTES = 1 << 30


def keep_freed_memory() -> bool:
    """Keep freed large buffers in the heap, unless the user tunes malloc or sets NEURENIX_CPU_KEEP_FREED=0."""
    user = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
    if lib is None or os.environ.get("NEURENIX_CPU_KEEP_FREED") == "0" or any(v in os.environ for v in user) \
            or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    return bool(lib.nx_keep_freed_memory(KEEP_FREED_BYTES))


keep_freed_memory()


def share_blas_pool() -> bool:
    """Run NumPy's OpenBLAS jobs on our OpenMP threads (``nx_blas_threads``): one pool that sleeps when idle,
    instead of two that fight for the cores. Off with NEURENIX_CPU_SHARE_BLAS_POOL=0."""
    if lib is None or not lib.nx_has_openmp() or os.environ.get("NEURENIX_CPU_SHARE_BLAS_POOL") == "0":
        return False
    address = int(ffi.cast("uintptr_t", ffi.addressof(lib, "nx_blas_threads")))
    return host_threads.BLAS.share_pool(address, "neurenix-backend-cpu's OpenMP threads")


share_blas_pool()
