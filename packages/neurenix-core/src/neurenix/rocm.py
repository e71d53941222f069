"""``neurenix.rocm``: whether a ROCm device (an AMD GPU, through HIP) can be used here, as ``neurenix.cuda``
answers for CUDA."""

from __future__ import annotations

from .device import get_device_count


def device_count() -> int:
    """How many rocm devices can be used here (0 without a usable rocm backend)."""
    return get_device_count("rocm")


def is_available() -> bool:
    """Whether a rocm device can be used here."""
    return device_count() > 0
