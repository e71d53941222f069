"""Errors a real GPU gives, provoked through the stand-in: launch limits, out of memory, compile errors."""

import numpy as np
import pytest
from neurenix_gpu import CompileError, GpuError, OutOfMemoryError, source
from neurenix_gpu.testing import run_on_real_device
from neurenix_gpu.testing.emulator import Emulator

import neurenix as nx

from .conftest import emulated_backend


def _device(**limits):
    backend = emulated_backend(Emulator(**limits))
    assert backend.unavailable_reason() is None
    return backend, backend.device(0)


def test_launch_beyond_device_limits_is_refused_by_name():
    backend, dev = _device(max_threads=128)
    x = dev.upload(np.ones(4, np.float32))
    with pytest.raises(GpuError, match=r"kernel 'unary_f32' with grid \(1, 1, 1\) and block \(256, 1, 1\) exceeds "
                                       r"the limits of cuda_emu:0: at most 128 threads per block"):
        backend.kernels()["neg"](x)


def test_out_of_memory_frees_the_cache_then_says_sizes():
    backend, dev = _device(memory=8192)
    k = backend.kernels()
    a = k["full"]((1024,), 1.0, np.float32, 0)      # 4096 bytes
    b = k["full"]((512,), 2.0, np.float32, 0)       # 2048 bytes
    del b                                            # back to the cache, still held on the device
    c = k["full"]((1024,), 3.0, np.float32, 0)      # does not fit beside a and the cache: cache freed, retried
    assert dev.allocator.cached == 0 and k["to_numpy"](c)[0] == 3.0
    with pytest.raises(OutOfMemoryError, match=r"out of memory on cuda_emu:0: cannot allocate 40000 bytes \(40448 "
                                          r"rounded\); 8192 bytes held by live tensors.*device total 8192 bytes"):
        k["full"]((10000,), 0.0, np.float32, 0)
    assert k["to_numpy"](a).sum() == 1024


def test_compile_error_shows_the_compiler_log(monkeypatch):
    _, dev = _device()
    monkeypatch.setattr(source, "kernel_source", lambda: 'extern "C" __global__ void broken(float* x) { x[0] = y; }')
    with pytest.raises(CompileError, match=r"(?s)cuda_emu:0 \(sm_80\).*NVRTC 13\.0 could not compile "
                                           r"nx_kernels\.cu for sm_80.*broken.*.y. was not declared"):
        dev.function("broken")


def test_listing_says_why_the_real_backends_cannot_run():
    status = {s.device_type: s for s in nx.list_backends()}
    if status["cuda"].available:
        pytest.skip("a CUDA device is present")
    assert "libcuda.so.1 not found" in status["cuda"].reason or "CUDA" in status["cuda"].reason


def test_nvrtc_missing_is_reported(monkeypatch):
    from neurenix_backend_cuda import cuda
    monkeypatch.setattr(cuda, "nvrtc_candidates", lambda: ["libnvrtc-does-not-exist.so"])
    with pytest.raises(OSError, match=r"NVRTC not found .*neurenix-backend-cuda\[nvrtc\]"):
        cuda.open_nvrtc()


@pytest.mark.gpu
def test_real_cuda_device_runs_the_kernels():
    """Only where a CUDA GPU is present (pytest -m gpu); the whole suite runs there with device 'cuda'."""
    run_on_real_device("cuda")


@pytest.mark.gpu
def test_real_cuda_device_runs_the_implicit_gemm_convolution():
    """conv2d and its gradients (neurenix_gpu.ops.conv) on a CUDA GPU against NumPy (pytest -m gpu)."""
    from neurenix_backend_cuda.plugin import neurenix_backends
    from neurenix_gpu.testing.conv import check_on_real_device

    check_on_real_device(neurenix_backends()[0])
