"""The ``neurenix.backends`` entry point of neurenix-backend-rocm: device type ``rocm``."""

from __future__ import annotations

from neurenix_gpu.backend import GpuBackend

from neurenix.backend import hookimpl

from .hip import HipDriver, open_hip, open_hiprtc, open_rocblas


def open_driver() -> HipDriver:
    hip = open_hip()
    return HipDriver(hip, open_hiprtc(hip), open_rocblas())


class RocmBackend(GpuBackend):
    device_type = "rocm"
    name = "rocm-hiprtc"


@hookimpl
def neurenix_backends():
    return [RocmBackend(open_driver)]
