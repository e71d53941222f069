"""Emulated CUDA devices: the backend's host code over the CPU stand-in for libcuda and NVRTC."""

import pytest
from neurenix_backend_cuda.cuda import CudaDriver
from neurenix_backend_cuda.emulator import Emulator, serving
from neurenix_backend_cuda.emulator.vendor import FakeCuda, FakeNvrtc
from neurenix_backend_cuda.plugin import CudaBackend


def emulated_backend(emulator: Emulator, device_type: str = "cuda_emu") -> CudaBackend:
    return CudaBackend(lambda: CudaDriver(FakeCuda(emulator), FakeNvrtc(emulator)), device_type,
                       f"{device_type}-stand-in")


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a real GPU (runs where one is present, skips elsewhere)")


@pytest.fixture(scope="session", autouse=True)
def kernel_cache(tmp_path_factory):
    """One kernel cache for the session: each arch compiles once, and the cache is exercised."""
    mp = pytest.MonkeyPatch()
    mp.setenv("NEURENIX_KERNEL_CACHE", str(tmp_path_factory.mktemp("kernels")))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def emulated_cuda():
    """Device type ``cuda_emu``: two emulated devices, registered for the module."""
    with serving(emulated_backend(Emulator(devices=2)), "cuda_emu") as backend:
        yield backend
