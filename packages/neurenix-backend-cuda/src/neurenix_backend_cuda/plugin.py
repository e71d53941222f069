"""The ``neurenix.backends`` entry point of neurenix-backend-cuda: device type ``cuda``."""

from __future__ import annotations

from neurenix_gpu.backend import GpuBackend

from neurenix.backend import hookimpl

from .cuda import CudaDriver, open_cublas, open_cuda, open_nvrtc


def open_driver() -> CudaDriver:
    cuda = open_cuda()  # first: without a driver, NVRTC does not matter
    return CudaDriver(cuda, open_nvrtc(), open_cublas())


class CudaBackend(GpuBackend):
    device_type = "cuda"
    name = "cuda-nvrtc"


@hookimpl
def neurenix_backends():
    return [CudaBackend(open_driver)]
