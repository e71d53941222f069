"""Emulated CUDA devices: the backend's host code over the stand-ins for libcuda, NVRTC and cuBLAS."""

import pytest
from neurenix_backend_cuda.cuda import CudaDriver
from neurenix_backend_cuda.plugin import CudaBackend
from neurenix_gpu.testing import serving
from neurenix_gpu.testing.emulator import Emulator
from neurenix_gpu.testing.fixtures import kernel_cache  # noqa: F401 (a fixture: one kernel cache per session)

from .stand_ins import FakeCuda, fake_cublas, fake_nvrtc


def emulated_backend(emulator: Emulator, device_type: str = "cuda_emu", blas: bool = False) -> CudaBackend:
    """With ``blas``, float matmul goes through the fake cuBLAS; without, through the tiled kernel."""
    return CudaBackend(lambda: CudaDriver(FakeCuda(emulator), fake_nvrtc(emulator),
                                          fake_cublas(emulator) if blas else None), device_type,
                       f"{device_type}-stand-in")



@pytest.fixture(scope="module", params=["tiled", "cublas"])
def emulated_cuda(request):
    """Device type ``cuda_emu``: two emulated devices, registered for the module; once with matmul through
    the tiled kernel (no libcublas), once through the fake cuBLAS."""
    with serving(emulated_backend(Emulator(devices=2), blas=request.param == "cublas"), "cuda_emu") as backend:
        yield backend
