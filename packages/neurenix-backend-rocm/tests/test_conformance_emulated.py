"""The core conformance suite on emulated ROCm devices, through this backend's HIP host code."""

import pytest

from neurenix.testing.conformance import *  # noqa: F403


@pytest.fixture(scope="module")
def neurenix_device(emulated_rocm):
    return "rocm_emu"
