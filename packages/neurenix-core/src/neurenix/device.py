"""Devices: where tensors live, and the default device new tensors go to."""

from __future__ import annotations

import numbers
import sys
import types
import typing

import numpy as np

from .backend.registry import REGISTRY, STANDARD_DEVICE_TYPES, KernelTable
from .errors import DeviceError


class DeviceType(str):
    """A device type name. ``DeviceType.CPU == "cpu"``; third-party backends add new ones."""

    __slots__ = ()
    CPU: DeviceType
    CUDA: DeviceType
    ROCM: DeviceType
    WEBGPU: DeviceType

    def __repr__(self) -> str:
        if self in STANDARD_DEVICE_TYPES:
            return f"DeviceType.{self.upper()}"
        return f"DeviceType({str(self)!r})"


for _t in STANDARD_DEVICE_TYPES:
    setattr(DeviceType, _t.upper(), DeviceType(_t))


class Device:
    """A device, such as ``Device("cpu")`` or ``Device("cuda:1")``; ``Device("auto")`` is the best usable one
    (:func:`auto_device`). Devices are interned: one object each.

    Its ``kernels`` table is what every op on its tensors dispatches through.
    """

    __slots__ = ("_name", "checks", "index", "kernels", "type")
    _interned: typing.ClassVar[dict] = {}

    type: DeviceType
    index: int
    kernels: KernelTable
    checks: list  # index checks queued for the next synchronisation (see ops/bounds.py)

    def __new__(cls, spec: str | Device = "cpu", index: int | None = None) -> Device:
        if isinstance(spec, Device):  # never a key of _interned: a lookup would call Device.__eq__, hence Device()
            if index is None or index == spec.index:
                return spec
            spec = spec.type
        dev = cls._interned.get((spec, index))
        if dev is None:
            if spec == "auto":  # never interned: the pick follows the backends installed and usable
                if index is not None:
                    raise DeviceError(f"device 'auto' picks its index itself; got index={index!r}")
                return auto_device()
            dev = cls._make(spec, index)
            cls._interned[(spec, index)] = dev
        return dev

    @classmethod
    def _make(cls, spec, index) -> Device:
        if not isinstance(spec, str):
            raise TypeError(f"a device is a string such as 'cpu' or 'cuda:0', or a Device; got {spec!r}")
        name, colon, idx = spec.partition(":")
        if colon:
            if index is not None:
                raise DeviceError(f"device {spec!r} already has an index; do not pass index={index} too")
            if not (idx.isascii() and idx.isdigit()):
                raise DeviceError(f"invalid device {spec!r}: the index after ':' must be a non-negative integer")
            index = int(idx)
        if index is None:
            index = 0
        elif not isinstance(index, numbers.Integral) or index < 0:
            raise DeviceError(f"invalid device index {index!r} for {spec!r}: it must be a non-negative integer")
        index = int(index)
        REGISTRY.load()
        installed = REGISTRY.device_types()
        if name not in installed and name not in STANDARD_DEVICE_TYPES:
            raise DeviceError(_unknown(name, spec, installed))
        key = (name, index)
        dev = cls._interned.get(key)
        if dev is None:
            dev = object.__new__(cls)
            dev.type = DeviceType(name)
            dev.index = index
            dev.kernels = REGISTRY.table(name)
            dev.checks = []
            dev._name = name if name == "cpu" and index == 0 else f"{name}:{index}"
            count = dev.kernels.device_count
            if dev.kernels.reason is None and index >= count:
                raise DeviceError(f"device {dev._name} does not exist: {count} {name} device(s) found")
            cls._interned[key] = dev
        return dev

    def raise_pending(self) -> None:
        """Read the checks queued on this device (this waits for it) and raise the first that failed, as an
        IndexError (ops/bounds.py queues them: index bounds on devices off the host)."""
        pending, self.checks[:] = list(self.checks), []
        k = self.kernels
        for lo, hi, low, high, what in pending:
            raise_outside(np.concatenate([np.ravel(k.to_numpy(lo)), np.ravel(k.to_numpy(hi))]), low, high, what)

    def check(self) -> Device:
        """Raise a DeviceError saying why, if this device cannot run here; else return it."""
        reason = self.kernels.reason
        if reason is not None:
            raise DeviceError(f"device {self._name} cannot run: {reason}")
        return self

    def __repr__(self) -> str:
        return f"device({self._name!r})"

    def __str__(self) -> str:
        return self._name

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = Device(other)
            except DeviceError:
                return False
        return self is other

    def __hash__(self) -> int:
        return hash(self._name)

    def __reduce__(self):
        return (Device, (self._name,))


def auto_device() -> Device:
    """The device ``Device("auto")`` (and ``device="auto"`` anywhere) picks: the usable device whose backend
    prefers it most (``Backend.preference``: a CUDA or ROCm GPU, then WebGPU on a GPU), else the CPU.
    ``neurenix devices`` shows the ranking."""
    best = REGISTRY.ranking()[:1]
    return Device(best[0][0]) if best and best[0][1] > 0 else Device("cpu")


_default: Device | None = None


def default_device() -> Device:
    """The device that new tensors and modules land on (``cpu`` unless ``init`` chose another)."""
    global _default
    if _default is None:
        _default = Device("cpu")
    return _default


def set_default_device(device: str | Device) -> None:
    """Make ``device`` the default; it must be usable here."""
    global _default
    _default = Device(device).check()


def as_device(device) -> Device:
    """``None`` -> the default device; a string or Device -> that Device."""
    return default_device() if device is None else Device(device)


def get_device_count(device_type: str | DeviceType = DeviceType.CPU) -> int:
    """How many devices of ``device_type`` can be used here: 0 if none, or no backend can run."""
    table = REGISTRY.table(str(device_type))
    return table.device_count if table.reason is None else 0


def _unknown(name: str, spec: str, installed: set) -> str:
    """Why device type ``name`` is unknown: what is installed, what could be, and which plugins failed."""
    missing = [f"{t} (pip install neurenix-backend-{t})" for t in STANDARD_DEVICE_TYPES if t not in installed]
    message = f"unknown device type {name!r} in {spec!r}; installed device types: {', '.join(sorted(installed))}"
    if missing:
        message += f"; not installed: {', '.join(missing)}"
    failed = REGISTRY.failures()
    if failed:
        message += "; backend plugins that failed to load (one may provide it): " + "; ".join(failed)
    return message


def synchronize(device=None) -> None:
    """Wait until work queued on ``device`` has finished (a no-op on synchronous devices such as cpu)."""
    dev = as_device(device)
    dev.kernels.synchronize(dev.index)
    if dev.checks:
        dev.raise_pending()


def raise_outside(values, low: int, high: int, what: str) -> None:
    """An IndexError naming the first bound broken if an index among ``values`` (an array) is outside
    ``[low, high)``."""
    if not values.size:
        return
    lo, hi = int(values.min()), int(values.max())
    if lo < low or hi >= high:
        bad = lo if lo < low else hi
        raise IndexError(f"{what}: index {bad} is out of range (valid: {low}..{high - 1})")


class _DeviceModule(types.ModuleType):
    """This module, callable as PyTorch's ``torch.device``: ``neurenix.device("cpu")`` is ``Device("cpu")``,
    while ``import neurenix.device`` and ``from neurenix.device import Device`` keep working."""

    def __call__(self, spec: str | Device = "cpu", index: int | None = None) -> Device:
        return Device(spec, index)


sys.modules[__name__].__class__ = _DeviceModule
