"""The host layer on its own: a GpuBackend over the emulator through neurenix_gpu.testing's EmulatedDriver."""

import pytest
from neurenix_gpu.backend import GpuBackend
from neurenix_gpu.testing.driver import EmulatedDriver
from neurenix_gpu.testing.emulator import Emulator


@pytest.fixture(scope="session", autouse=True)
def kernel_cache(tmp_path_factory):
    """One kernel cache for the session: the host build of the kernels happens once."""
    mp = pytest.MonkeyPatch()
    mp.setenv("NEURENIX_KERNEL_CACHE", str(tmp_path_factory.mktemp("kernels")))
    yield
    mp.undo()


@pytest.fixture
def make_backend():
    """``make_backend(emulator=None, device_type="gpu_emu")``: a GpuBackend over the emulator's devices."""
    def make(emulator: Emulator | None = None, device_type: str = "gpu_emu") -> GpuBackend:
        emulator = emulator or Emulator()
        return GpuBackend(lambda: EmulatedDriver(emulator), device_type, f"{device_type}-emulated")
    return make


@pytest.fixture(scope="module")
def backend():
    emulator = Emulator(devices=2)
    return GpuBackend(lambda: EmulatedDriver(emulator), "gpu_emu", "gpu_emu-emulated")


@pytest.fixture(scope="module")
def kernels(backend):
    return backend.kernels()
