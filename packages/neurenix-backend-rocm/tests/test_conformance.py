"""The core conformance suite on emulated ROCm devices, through this backend's HIP host code, float matmul
through the fake rocBLAS."""

import numpy as np
import pytest

import neurenix as nx
from neurenix.testing.conformance import *  # noqa: F403


@pytest.fixture(scope="module")
def neurenix_device(emulated_rocm):
    return "rocm_emu"


def test_float_matmul_goes_through_rocblas(emulated_rocm, neurenix_device):
    calls = len(emulated_rocm.driver.blas.lib.calls)
    a = np.arange(6.0).reshape(2, 3)
    x = nx.Tensor(a, device=neurenix_device)
    np.testing.assert_allclose((x @ x.T).numpy(), a @ a.T)
    assert len(emulated_rocm.driver.blas.lib.calls) == calls + 1
