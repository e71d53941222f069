"""The toy backend: what a Neurenix backend plugin provides, in the fewest lines.

A backend plugin provides three things:

1. Buffers: its arrays, any objects with ``.shape`` (a tuple of ints) and ``.dtype`` (a NumPy dtype).
   Core never looks inside them; it only hands them back to the backend's kernels. Here a
   :class:`ToyBuffer` wraps a NumPy array and remembers which toy device holds it.
2. A :class:`neurenix.backend.Backend` subclass: the device type, a priority, how many devices there
   are, whether it can run here (and why not), and its kernels: a dict of callables covering every
   kernel of ``neurenix.backend.REQUIRED`` (32 of them; ``docs/backends.md`` and
   ``neurenix/backend/kernels.py`` give each signature). Kernels of ``neurenix.backend.OPTIONAL`` (neg,
   sub, fused optimizer steps, softmax...) may be left out: core composes them from the required ones.
3. A ``neurenix_backends`` hook implementation returning the backends (bottom of this file), named by
   an entry point of group ``neurenix.backends`` in the distribution's ``pyproject.toml``.

Toy kernels compute with core's NumPy reference kernels (``neurenix.backend.reference()``): unwrap the
buffers, call the reference, wrap the result. A real backend would launch its own code on its own memory
instead.
"""

from __future__ import annotations

import numpy as np

from neurenix.backend import REQUIRED, Backend, hookimpl, reference


class ToyBuffer:
    """An array on toy device ``index``. Deliberately not a NumPy array, and not convertible to one."""

    __slots__ = ("array", "index")

    def __init__(self, array: np.ndarray, index: int):
        self.array, self.index = array, index

    @property
    def shape(self) -> tuple:
        return self.array.shape

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    def __repr__(self) -> str:
        return f"ToyBuffer(shape={self.shape}, dtype={self.dtype}, device=toy:{self.index})"


def _unwrap(arg, indices: set):
    """``arg`` with its ToyBuffers (also inside lists and tuples, as in ``cat`` or ``getitem`` keys)
    replaced by their arrays; the devices they live on are added to ``indices``."""
    if isinstance(arg, ToyBuffer):
        indices.add(arg.index)
        return arg.array
    if isinstance(arg, (list, tuple)):
        return type(arg)(_unwrap(a, indices) for a in arg)
    return arg


def _toy_kernel(name: str):
    """The reference kernel ``name`` made to take ToyBuffers and return one, on its inputs' device."""
    compute = getattr(reference(), name)

    def kernel(*args):
        indices = set()
        out = compute(*_unwrap(args, indices))
        if len(indices) != 1:  # core checks devices before calling a kernel: this never happens
            raise RuntimeError(f"toy kernel {name!r} got buffers from devices {sorted(indices)}")
        return ToyBuffer(np.asarray(out), indices.pop())  # reductions give NumPy scalars: make them 0-d arrays

    kernel.__name__ = name
    return kernel


# Transfers and allocation take no buffer, or return a host array: they are written out.
def from_numpy(array: np.ndarray, index: int) -> ToyBuffer:
    return ToyBuffer(array, index)


def to_numpy(x: ToyBuffer) -> np.ndarray:
    return x.array.copy()  # as a device backend would: the host copy is the caller's own


def full(shape: tuple, value, dtype: np.dtype, index: int) -> ToyBuffer:
    return ToyBuffer(np.full(shape, value, dtype), index)


KERNELS = {name: _toy_kernel(name) for name in REQUIRED}
KERNELS.update(from_numpy=from_numpy, to_numpy=to_numpy, full=full)


class ToyBackend(Backend):
    device_type = "toy"  # a new device type: Device("toy:1") works once this plugin is installed
    name = "toy"
    priority = 0  # the only backend for "toy"; raise it to override another backend's kernels
    dtypes = ("float32", "float64", "int64", "bool")

    def unavailable_reason(self) -> str | None:
        return None  # a GPU backend would probe its driver here and say what is missing

    def device_count(self) -> int:
        return 2

    def device_name(self, index: int) -> str:
        return f"toy device {index} (NumPy inside)"

    def kernels(self) -> dict:
        return KERNELS


@hookimpl
def neurenix_backends() -> list[Backend]:
    return [ToyBackend()]
