"""The cffi builder (API mode, out of line) of the C kernels: ``neurenix_backend_cpu._kernels``.

The hatch build hook (``hatch_build.py``) calls :func:`build` at install time. Environment: ``CC`` picks the
compiler; ``NEURENIX_CPU_MARCH`` the target of a build for this machine (default ``native``);
``NEURENIX_CPU_PORTABLE=1`` builds a wheel for other machines instead (:data:`PORTABLE`);
``NEURENIX_CPU_SANITIZE=address`` builds with AddressSanitizer (tests only).
"""

from __future__ import annotations

import os
import pathlib
import platform
import shutil
import sysconfig

import cffi

HERE = pathlib.Path(__file__).resolve().parent
CSRC = HERE / "csrc"

_BINARY = ("add", "sub", "mul", "div", "maximum", "minimum")
_WINDOW = ("int64_t n, int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, "
           "int64_t pw, int64_t dh, int64_t dw, int64_t oh, int64_t ow")
#: the C functions of one float type, by family: csrc/<family>.h defines them, <family>.py calls them
#: (S stands for the type's suffix, f32 or f64)
FAMILIES = {
    "elementwise": [
        *(f"void {op}_S(const void *a, const void *b, void *o, int64_t d0, int64_t d1, int64_t d2, int64_t a0, "
          f"int64_t a1, int64_t a2, int64_t b0, int64_t b1, int64_t b2);" for op in _BINARY),
        *(f"void {op}_scalar_S(const void *a, double s, void *o, int64_t n, int s_first);" for op in _BINARY),
        "void relu_S(const void *x, void *o, int64_t n);",
        "void relu_backward_S(const void *g, const void *x, void *o, int64_t n);",
        "void where_S(const void *c, const void *a, const void *b, void *o, int64_t n, int scalars, double sa, "
        "double sb);",
    ],
    "reductions": [
        "void reduce_mid_S(int op, const void *x, void *o, int64_t na, int64_t nr, int64_t nb);",
        "void reduce_outer_S(int op, const void *x, void *o, int64_t n1, int64_t nk, int64_t n2);",
    ],
    "norm": [
        "void batch_norm_S(const void *x, const void *w, const void *b, void *y, void *mean, void *var, "
        "int64_t groups, int64_t nr, int64_t c, int64_t r, int64_t ps, double eps);",
        "void batch_norm_backward_S(const void *g, const void *x, const void *mean, const void *var, const void *w, "
        "void *gx, void *gw, void *gb, int64_t groups, int64_t nr, int64_t c, int64_t r, int64_t ps, double eps);",
        "void batch_norm_relu_pool_S(const void *x, const void *w, const void *b, void *y, void *mean, void *var, "
        "int64_t groups, int64_t nr, int64_t c, int64_t h, int64_t w_, int64_t ps, double eps);",
        "int batch_norm_relu_pool_backward_S(const void *g, const void *x, const void *mean, const void *var, "
        "const void *w, const void *b, void *gx, void *gw, void *gb, int64_t groups, int64_t nr, int64_t c, "
        "int64_t h, int64_t w_, int64_t ps, double eps);",
    ],
    "softmax": [
        "void exp_S(const void *x, void *o, int64_t n);",
        "void softmax_rows_S(int mode, const void *x, void *o, int64_t rows, int64_t c);",
        "void softmax_rows_backward_S(int mode, const void *g, const void *y, void *o, int64_t rows, int64_t c);",
        "void cross_entropy_S(const void *x, const void *p, void *loss, void *sm, int64_t n, int64_t c);",
        "void cross_entropy_backward_S(const void *g, const void *sm, const void *p, void *o, int64_t n, int64_t c);",
    ],
    "windows": [
        f"void unfold_S(const void *x, void *o, int64_t sb, int64_t sk, {_WINDOW});",
        f"void fold_S(const void *cols, void *o, int64_t sb, int64_t sk, {_WINDOW});",
        f"void max_pool2d_S(const void *x, void *o, void *idx, {_WINDOW});",
        f"void max_pool2d_backward_S(const void *g, const void *idx, void *o, {_WINDOW});",
    ],
    "linalg": [
        "void bmm_S(const void *a, const void *b, void *c, int64_t nbatch, int64_t m, int64_t n, int64_t k, "
        "int64_t sa, int64_t sb, int ta, int tb);",
        "void bmm_nt_S(const void *a, const void *b, void *c, int64_t nbatch, int64_t m, int64_t n, int64_t k, "
        "int64_t sa, int64_t sb);",
        "void linear_S(const void *x, const void *w, const void *b, void *o, int64_t nbatch, int64_t n, int64_t ni, "
        "int64_t no, int64_t sx, int64_t sw, int64_t sb);",
        "void linear_backward_S(const void *g, const void *x, const void *w, void *gx, void *gw, void *gb, "
        "int64_t nbatch, int64_t n, int64_t ni, int64_t no, int64_t sx, int64_t sw);",
    ],
    "conv": [
        "void winograd_input_S(const void *x, void *v, int64_t n, int64_t c, int64_t h, int64_t w, int64_t ph, "
        "int64_t pw, int64_t th, int64_t tw, int64_t tasks);",
        "int winograd_conv_S(const void *x, const void *u, const void *b, void *y, int64_t n, int64_t c, int64_t h, "
        "int64_t w, int64_t o, int64_t ph, int64_t pw, int64_t oh, int64_t ow, int64_t tasks, int64_t bias_per_task);",
        "void winograd_grad_S(const void *g, void *gm, int64_t n, int64_t o, int64_t oh, int64_t ow, int64_t th, "
        "int64_t tw, int64_t tasks);",
    ],
    "optim": [
        "void adam_S(int np, void **p, void **g, void **m, void **v, void **op, void **om, void **ov, "
        "const void *sizes, double lr, double beta1, double beta2, double eps, double wd, int decoupled, "
        "int maximize, double bias1, double bias2);",
        "void sgd_S(int np, void **p, void **g, void **b, void **op, void **ob, const void *sizes, double lr, "
        "double momentum, double dampening, int nesterov, double wd, int maximize);",
    ],
}
#: the int8 inference kernels (csrc/quantized.h, called from quantized.py): float32 only, so outside FAMILIES
QUANTIZED = [
    "const char *nx_int8_isa(void);",
    "const char *nx_int8_best_isa(void);",
    "int nx_int8_use(const char *isa);",
    "void nx_quantize_int8(const void *x, void *q, int64_t n, float scale, int zp);",
    "int nx_qlinear(const void *x, const void *w, const void *w_scale, const void *bias, void *y, int64_t m, "
    "int64_t k, int64_t o, float x_scale, int zp);",
    "int nx_qconv2d(const void *x, const void *w, const void *w_scale, const void *bias, void *y, int64_t n, "
    "int64_t c, int64_t h, int64_t w_, int64_t o, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, "
    "int64_t pw, int64_t dh, int64_t dw, int64_t oh, int64_t ow, float x_scale, int zp);",
]
CDEF = "\n".join(["void nx_set_num_threads(int n);", "int nx_get_num_threads(void);", "int nx_has_openmp(void);",
                  "const char *nx_target(void);", "int nx_cpu_runs(const char *target);",
                  "int nx_keep_freed_memory(int64_t bytes);",
                  "void nx_blas_threads(int sync, void (*run)(int, void *, int), int numjobs, size_t size, "
                  "void *jobs, int arg);",
                  *(line.replace("_S(", f"_{s}(") for s in ("f32", "f64") for lines in FAMILIES.values()
                    for line in lines), *QUANTIZED])


#: NEURENIX_CPU_PORTABLE=1: the kernels for a baseline every x86-64 CPU of the last decade runs (x86-64-v2: SSE4.2),
#: and again for AVX2 and FMA (x86-64-v3) and AVX-512 (x86-64-v4), each its own module (``_kernels``, ``_kernels_v3``,
#: ``_kernels_v4``), of which native.py loads the best the CPU supports; one baseline on aarch64. Without it: one
#: module for this machine (``-march=native``), which is what pip builds from the sdist.
PORTABLE = {"x86_64": [("", "x86-64-v2"), ("_v3", "x86-64-v3"), ("_v4", "x86-64-v4")], "aarch64": [("", "armv8-a")]}


def targets() -> list[tuple[str, str]]:
    """(module suffix, -march value) of each module to build."""
    if os.environ.get("NEURENIX_CPU_PORTABLE", "0") in ("", "0"):
        return [("", os.environ.get("NEURENIX_CPU_MARCH", "native"))]
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    if machine not in PORTABLE:
        raise RuntimeError(f"NEURENIX_CPU_PORTABLE: no portable targets are known for {machine} (known: "
                           f"{', '.join(PORTABLE)}); build without it, for this machine")
    return PORTABLE[machine]


def _compiler() -> str:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    exe = cc.split()[0]
    if shutil.which(exe) is None:
        raise RuntimeError(
            f"neurenix-backend-cpu compiles C kernels at install time, but no C compiler was found (looked for "
            f"{exe!r}; set CC to choose one). Install gcc with OpenMP, e.g. `apt-get install gcc` or "
            f"`dnf install gcc`, then install again.")
    return cc


def flags(march: str = "native") -> tuple[list[str], list[str]]:
    """(compiler flags, linker flags) of the kernels for ``-march=<march>``; tools/aarch64.py cross-compiles with
    them too."""
    # -fno-math-errno: no kernel reads errno, and without it sqrt and exp may set it, which keeps GCC from
    # vectorising their loops.
    # -ffp-contract=fast: a * b + c becomes one FMA (ISO C mode, -std=c99, turns that off and halves the
    # matmul tiles' throughput).
    # -Wno-psabi: on a baseline without AVX, GCC notes that 32-byte vector arguments pass differently; they are
    # static functions' only, inlined, never an interface
    cflags = ["-O3", "-fopenmp", "-std=c99", "-fno-math-errno", "-ffp-contract=fast", "-Wall", "-Wno-unknown-pragmas",
              "-Wno-psabi", f"-march={march}", f'-DNX_TARGET="{march}"']
    ldflags = ["-fopenmp"]
    if os.environ.get("NEURENIX_CPU_SANITIZE"):
        san = f"-fsanitize={os.environ['NEURENIX_CPU_SANITIZE']}"
        cflags += [san, "-fno-omit-frame-pointer", "-g"]
        ldflags += [san]
    return cflags, ldflags


def ffibuilder(suffix: str = "", march: str = "native") -> cffi.FFI:
    """The builder of module ``_kernels<suffix>`` for ``-march=<march>`` (:func:`targets`)."""
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    cflags, ldflags = flags(march)
    ffi.set_source(f"neurenix_backend_cpu._kernels{suffix}", '#include <stdint.h>\n' + CDEF.replace(";", ";\n"),
                   sources=[str(CSRC / "kernels.c")], include_dirs=[str(CSRC)],
                   extra_compile_args=cflags, extra_link_args=ldflags)
    return ffi


def build(target_dir: pathlib.Path, tmp_dir: pathlib.Path) -> list[pathlib.Path]:
    """Compile the extension modules (:func:`targets`) into ``target_dir`` (the package directory); returns the
    libraries' paths."""
    _compiler()
    out = []
    for suffix, march in targets():
        work = tmp_dir / (suffix.strip("_") or "base")
        work.mkdir(parents=True, exist_ok=True)
        try:
            lib = ffibuilder(suffix, march).compile(tmpdir=str(work),
                                                     verbose=bool(os.environ.get("NEURENIX_CPU_VERBOSE")))
        except Exception as e:  # distutils' CompileError, or a linker error: say what to do
            raise RuntimeError(f"neurenix-backend-cpu: compiling the C kernels (-march={march}) failed ({e}). It "
                               "needs a C compiler with OpenMP support (gcc: `apt-get install gcc`); set "
                               "NEURENIX_CPU_VERBOSE=1 to see the compiler's output.") from e
        lib = pathlib.Path(lib)
        out.append(target_dir / lib.name)
        shutil.copy2(lib, out[-1])
    return out
