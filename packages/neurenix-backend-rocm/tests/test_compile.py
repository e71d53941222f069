"""Every kernel compiles with the real hiprtc for CDNA (wave64) and RDNA (wave32) targets (no GPU needed).

Each compile runs in a child process: ROCm 5.2's hiprtc (Debian bookworm) aborts the process on a target its
device libraries do not know, instead of returning an error."""

import glob
import subprocess
import sys

import pytest
from neurenix_gpu.source import kernel_source
from neurenix_gpu.testing import run_on_real_device

CHILD = """
import sys
from neurenix_backend_rocm.hip import HiprtcCompiler, open_hip, open_hiprtc
from neurenix_gpu.source import compile_cached, kernel_source
from pathlib import Path
compiler = HiprtcCompiler(open_hiprtc(open_hip()))
image = compile_cached(compiler, kernel_source(), sys.argv[1], Path(sys.argv[2]))
print(len(image), image[:4])
"""


def _known_to_device_libs(arch: str) -> bool:
    """Debian's rocm-device-libs keep one oclc_isa_version bitcode per target (ROCm 5.2: up to gfx1036)."""
    libs = glob.glob("/usr/lib/*/amdgcn/bitcode/oclc_isa_version_*.bc")
    return not libs or any(lib.endswith(f"_{arch[3:]}.bc") for lib in libs)


@pytest.mark.parametrize("arch", ["gfx90a", "gfx1030", "gfx1100"])
def test_every_kernel_compiles(arch, tmp_path):
    try:
        from neurenix_backend_rocm.hip import open_hip
        open_hip()
    except OSError as e:
        pytest.skip(f"{e}: apt-get install libamdhip64-5 libhiprtc-builtins5 libamd-comgr2 rocm-device-libs")
    if not _known_to_device_libs(arch):
        pytest.skip(f"the installed rocm-device-libs predate {arch} (no oclc_isa_version_{arch[3:]}.bc)")
    r = subprocess.run([sys.executable, "-c", CHILD, arch, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "b'\\x7fELF'" in r.stdout  # an AMDGPU code object
    image = next(tmp_path.iterdir()).read_bytes()
    for name in ("binary_f32", "reduce_f64", "matmul_f32", "scatter_i64", "copy_b8_f64", "fold_f64", "conv2d_f32",
                 "conv2d_dx_f64", "conv2d_dw_f32"):
        assert name.encode() in image
    assert kernel_source()  # the same source the CUDA backend compiles


@pytest.mark.gpu
def test_real_rocm_device_runs_the_kernels():
    """Only where an AMD GPU is present (pytest -m gpu)."""
    run_on_real_device("rocm")


@pytest.mark.gpu
def test_real_rocm_device_runs_the_implicit_gemm_convolution():
    """conv2d and its gradients (neurenix_gpu.ops.conv) on an AMD GPU against NumPy (pytest -m gpu)."""
    from neurenix_backend_rocm.plugin import neurenix_backends
    from neurenix_gpu.testing.conv import check_on_real_device

    check_on_real_device(neurenix_backends()[0])
