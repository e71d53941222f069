"""The core conformance suite on emulated ROCm devices, through this backend's HIP host code. It runs twice
(see conftest.emulated_rocm): float matmul through the tiled kernel, then through the fake rocBLAS."""

import numpy as np
import pytest

import neurenix as nx
from neurenix.testing.conformance import *  # noqa: F403


@pytest.fixture(scope="module")
def neurenix_device(emulated_rocm):
    return "rocm_emu"


def test_float_matmul_takes_the_variant_path(emulated_rocm, neurenix_device, request):
    blas = emulated_rocm.driver.blas
    assert (blas is None) == (request.node.callspec.params["emulated_rocm"] == "tiled")
    calls = len(blas.lib.calls) if blas else 0
    a = np.arange(6.0).reshape(2, 3)
    x = nx.Tensor(a, device=neurenix_device)
    np.testing.assert_allclose((x @ x.T).numpy(), a @ a.T)
    if blas:
        assert len(blas.lib.calls) == calls + 1
