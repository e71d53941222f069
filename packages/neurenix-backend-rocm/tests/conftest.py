"""Emulated ROCm devices: this backend's host code over the CPU stand-in for libamdhip64 and hiprtc."""

import pytest
from neurenix_backend_cuda.emulator import Emulator, serving
from neurenix_backend_cuda.emulator.vendor import FakeHip
from neurenix_backend_rocm.hip import HipDriver
from neurenix_backend_rocm.plugin import RocmBackend


def emulated_backend(emulator: Emulator, device_type: str = "rocm_emu") -> RocmBackend:
    def open_driver():
        hip = FakeHip(emulator)
        return HipDriver(hip, hip)
    return RocmBackend(open_driver, device_type, f"{device_type}-stand-in")


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a real GPU (runs where one is present, skips elsewhere)")


@pytest.fixture(scope="session", autouse=True)
def kernel_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("NEURENIX_KERNEL_CACHE", str(tmp_path_factory.mktemp("kernels")))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def emulated_rocm():
    """Device type ``rocm_emu``: one emulated device, registered for the module."""
    with serving(emulated_backend(Emulator(devices=1)), "rocm_emu") as backend:
        yield backend
