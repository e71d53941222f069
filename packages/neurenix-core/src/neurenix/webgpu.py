"""``neurenix.webgpu``: whether a WebGPU device (a Vulkan, Metal, D3D12 or GL adapter, through wgpu-native) can
be used here, as ``neurenix.cuda`` answers for CUDA."""

from __future__ import annotations

from .device import get_device_count


def device_count() -> int:
    """How many webgpu devices can be used here (0 without a usable webgpu backend)."""
    return get_device_count("webgpu")


def is_available() -> bool:
    """Whether a webgpu device can be used here."""
    return device_count() > 0
