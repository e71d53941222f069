"""The core conformance suite on emulated CUDA devices: every kernel of nx_kernels.cu, built for the host,
run through this backend's own host code (launch shapes, strides, allocator, module cache). It runs twice
(see conftest.emulated_cuda): float matmul through the tiled kernel, then through the fake cuBLAS."""

import numpy as np
import pytest

import neurenix as nx
from neurenix.testing.conformance import *  # noqa: F403


@pytest.fixture(scope="module")
def neurenix_device(emulated_cuda):
    return "cuda_emu:1"


def test_float_matmul_takes_the_variant_path(emulated_cuda, neurenix_device, request):
    blas = emulated_cuda.driver.blas
    assert (blas is None) == (request.node.callspec.params["emulated_cuda"] == "tiled")
    calls = len(blas.lib.calls) if blas else 0
    a = np.arange(6.0).reshape(2, 3)
    x = nx.Tensor(a, device=neurenix_device)
    np.testing.assert_allclose((x @ x.T).numpy(), a @ a.T)
    if blas:
        assert len(blas.lib.calls) == calls + 1
