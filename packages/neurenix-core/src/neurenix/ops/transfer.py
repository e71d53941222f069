"""Copies and transfers: ``clone``, ``to_device`` and ``Tensor.to`` (a device, a dtype, or both)."""

from __future__ import annotations

import numpy as np

from .. import dtypes as _dt
from ..autograd.grad_mode import state as grad_state
from ..autograd.graph import record
from ..device import Device
from ._operands import Tensor, _wrap, cast


def clone(x: Tensor) -> Tensor:
    """A copy that shares no memory with ``x`` (differentiable)."""
    out = _wrap(x._device.kernels.copy(x._data), x._device)
    if x.requires_grad and grad_state.enabled:
        record(out, "Clone", (x,), lambda g, o: (g,), saved=())
    return out


def to_device(x: Tensor, device: Device) -> Tensor:
    """``x`` on ``device`` (``x`` itself if already there); gradients flow back across."""
    if device is x._device:
        return x
    if x._device.checks:  # a synchronisation of x's device
        x._device.raise_pending()
    host = x._device.kernels.to_numpy(x._data)
    arr = np.array(host, order="C", copy=True)
    out = _wrap(device.kernels.from_numpy(arr, device.index), device)
    if x.requires_grad and grad_state.enabled:
        src = x._device
        record(out, "ToDevice", (x,), lambda g, o: (to_device(g, src),), saved=())
    return out


_DTYPE_NAMES = {d.name for d in _dt.DTYPES}


def to(x: Tensor, *args, **kwargs) -> Tensor:
    """``to(device)``, ``to(dtype)``, ``to(device, dtype)`` or ``to(other)`` (``other``'s dtype and device): a
    differentiable copy (or ``x`` if unchanged)."""
    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    if kwargs:
        raise TypeError(f"to() got unexpected arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):  # x.to(other): other's dtype and device
            dtype, device = a.dtype, a.device
        elif isinstance(a, (_dt.DType, type)) or (isinstance(a, str) and a in _DTYPE_NAMES):
            dtype = a
        else:
            device = a
    if dtype is not None:
        x = cast(x, _dt.as_dtype(dtype))
    if device is not None:
        x = to_device(x, Device(device))
    return x
