"""Every kernel compiles with the real NVRTC for each architecture we support (no GPU needed)."""

import re

import pytest
from neurenix_backend_cuda.cuda import NvrtcCompiler, choose_target, open_nvrtc
from neurenix_gpu import GpuError
from neurenix_gpu.source import compile_cached, kernel_source

KERNELS = re.findall(r'extern "C" __global__ void (\w+)##', kernel_source())


@pytest.fixture(scope="module")
def nvrtc():
    try:
        return NvrtcCompiler(open_nvrtc())
    except OSError as e:
        pytest.skip(str(e))


@pytest.mark.parametrize("arch", ["sm_75", "sm_80", "sm_90"])
def test_every_kernel_compiles(nvrtc, arch, tmp_path):
    image = compile_cached(nvrtc, kernel_source(), arch, tmp_path)
    assert image[:4] == b"\x7fELF"  # a cubin
    for kind in KERNELS:  # each instantiated kernel is in it, by its extern "C" name
        assert f"{kind}f32".encode() in image or f"{kind}b8".encode() in image, kind
    assert compile_cached(nvrtc, kernel_source(), arch, tmp_path) == image  # from the disk cache now
    assert len(list(tmp_path.iterdir())) == 1


def test_ptx_for_an_architecture_newer_than_nvrtc(nvrtc, tmp_path):
    assert b".target sm_90" in compile_cached(nvrtc, kernel_source(), "compute_90", tmp_path)


def test_choose_target():
    assert choose_target(80, [75, 80, 90], (13, 0), 13020) == "sm_80"
    assert choose_target(120, [75, 80, 90], (13, 0), 13020) == "compute_90"  # the driver JIT-compiles the PTX
    with pytest.raises(GpuError, match="needs a CUDA 13 driver.*supports CUDA 12.4"):
        choose_target(80, [75, 80, 90], (13, 0), 12040)
    with pytest.raises(GpuError, match="sm_75 and newer; this GPU is sm_70"):
        choose_target(70, [75, 80, 90], (13, 0), 13000)
