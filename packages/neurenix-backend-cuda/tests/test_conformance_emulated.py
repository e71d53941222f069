"""The core conformance suite on emulated CUDA devices: every kernel of nx_kernels.cu, built for the host,
run through this backend's own host code (launch shapes, strides, allocator, module cache)."""

import pytest

from neurenix.testing.conformance import *  # noqa: F403


@pytest.fixture(scope="module")
def neurenix_device(emulated_cuda):
    return "cuda_emu:1"
