"""The host layer on its own: a GpuBackend over the emulator through neurenix_gpu.testing's EmulatedDriver."""

import pytest
from neurenix_gpu.backend import GpuBackend
from neurenix_gpu.testing.driver import EmulatedDriver
from neurenix_gpu.testing.emulator import Emulator
from neurenix_gpu.testing.fixtures import kernel_cache  # noqa: F401 (a fixture: one kernel cache per session)


def emulated_backend(emulator: Emulator | None = None, device_type: str = "gpu_emu") -> GpuBackend:
    """A GpuBackend over the emulator's devices (a new emulator with one device by default)."""
    emulator = emulator or Emulator()
    return GpuBackend(lambda: EmulatedDriver(emulator), device_type, f"{device_type}-emulated")


@pytest.fixture
def make_backend():
    return emulated_backend


@pytest.fixture(scope="module")
def backend():
    return emulated_backend(Emulator(devices=2))


@pytest.fixture(scope="module")
def kernels(backend):
    return backend.kernels()
