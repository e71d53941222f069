"""``neurenix.cuda``: PyTorch's ``torch.cuda`` queries, answered from the installed backends whether or not a
CUDA device is here (``is_available()`` is then False and ``device_count()`` 0)."""

from __future__ import annotations

from . import random as _random
from .device import Device, DeviceType, get_device_count
from .device import synchronize as _synchronize


def device_count() -> int:
    """How many CUDA devices can be used here (0 without a usable CUDA backend)."""
    return get_device_count(DeviceType.CUDA)


def is_available() -> bool:
    """Whether a CUDA device can be used here."""
    return device_count() > 0


def current_device() -> int:
    """The index of the CUDA device in use (always 0: neurenix picks devices explicitly, not by a current one)."""
    if not is_available():
        raise RuntimeError("neurenix.cuda.current_device(): no usable CUDA device here (neurenix.cuda.is_available() "
                           "is False)")
    return 0


def synchronize(device=None) -> None:
    """Wait for the work queued on a CUDA device (``cuda:0`` unless ``device`` says which)."""
    _synchronize(Device("cuda", device) if device is None or isinstance(device, int) else device)


def manual_seed(seed: int) -> None:
    """Seed neurenix's generator: one generator (on the host) feeds every device, so this is ``manual_seed``."""
    _random.manual_seed(seed)


def manual_seed_all(seed: int) -> None:
    """Same as ``manual_seed`` (one generator feeds every device)."""
    _random.manual_seed(seed)


__all__ = ["current_device", "device_count", "is_available", "manual_seed", "manual_seed_all", "synchronize"]
