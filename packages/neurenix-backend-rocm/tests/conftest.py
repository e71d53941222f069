"""Emulated ROCm devices: this backend's host code over the stand-ins for libamdhip64, hiprtc and rocBLAS."""

import pytest
from neurenix_backend_rocm.hip import HipDriver
from neurenix_backend_rocm.plugin import RocmBackend
from neurenix_gpu.testing import serving
from neurenix_gpu.testing.emulator import Emulator
from neurenix_gpu.testing.fixtures import kernel_cache  # noqa: F401 (a fixture: one kernel cache per session)

from .stand_ins import FakeHip, fake_hiprtc, fake_rocblas


def emulated_backend(emulator: Emulator, device_type: str = "rocm_emu", blas: bool = False) -> RocmBackend:
    """With ``blas``, float matmul goes through the fake rocBLAS; without, through the tiled kernel."""
    return RocmBackend(lambda: HipDriver(FakeHip(emulator), fake_hiprtc(emulator),
                                         fake_rocblas(emulator) if blas else None), device_type,
                       f"{device_type}-stand-in")



@pytest.fixture(scope="module")
def emulated_rocm():
    """Device type ``rocm_emu``: one emulated device with the fake rocBLAS, registered for the module. (The
    tiled matmul kernel and the shared host code around it run in the CUDA backend's conformance; test_blas.py
    covers this backend without rocBLAS. Running the suite a second time here would cost 25 s for nothing new.)"""
    with serving(emulated_backend(Emulator(devices=1), blas=True), "rocm_emu") as backend:
        yield backend
