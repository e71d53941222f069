"""The WebGPU backend (packages/neurenix-backend-webgpu) through the conformance suite, in float32
(with int64 and bool), on whatever adapter wgpu-native finds: lavapipe (software Vulkan) in CI.

Skips with the reason when no adapter is found, unless NEURENIX_REQUIRE_BACKENDS names webgpu
(then neurenix itself raises on first use, and these tests fail).
"""

import os

import pytest

import neurenix as nx
from neurenix.testing.conformance import *  # noqa: F403


@pytest.fixture(scope="module")
def neurenix_device():
    required = [r.strip() for r in os.environ.get("NEURENIX_REQUIRE_BACKENDS", "").split(",")]
    if "webgpu" not in required:
        status = [s for s in nx.list_backends() if s.device_type == "webgpu"]
        if not status:
            pytest.skip("neurenix-backend-webgpu is not installed (pip install packages/neurenix-backend-webgpu)")
        if not status[0].available:
            pytest.skip(f"webgpu cannot run here: {status[0].reason}")
    return "webgpu"
