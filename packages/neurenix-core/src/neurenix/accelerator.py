"""``neurenix.accelerator``: PyTorch's ``torch.accelerator`` (the device to train on when there is one). The
accelerators are the GPU device types, ``cuda`` then ``rocm``, when usable here; WebGPU is not one (its adapter
may be a software one, as lavapipe is): name it when you want it."""

from __future__ import annotations

from .device import Device, get_device_count
from .device import synchronize as _synchronize

ACCELERATORS = ("cuda", "rocm")


def current_accelerator() -> Device | None:
    """The accelerator's device (``cuda`` before ``rocm``), or None when neither can run here."""
    for t in ACCELERATORS:
        if get_device_count(t):
            return Device(t)
    return None


def is_available() -> bool:
    """Whether an accelerator can be used here."""
    return current_accelerator() is not None


def device_count() -> int:
    """How many devices the accelerator has here (0 without one)."""
    dev = current_accelerator()
    return 0 if dev is None else get_device_count(dev.type)


def synchronize(device=None) -> None:
    """Wait for the work queued on the accelerator (or on ``device``)."""
    dev = device if device is not None else current_accelerator()
    if dev is None:
        raise RuntimeError("neurenix.accelerator.synchronize(): no accelerator here (is_available() is False)")
    _synchronize(dev)


__all__ = ["current_accelerator", "device_count", "is_available", "synchronize"]
