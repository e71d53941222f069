"""Opt-in checking of kernel calls against the contract, for backend authors: with ``NEURENIX_CHECK_KERNELS=1``
in the environment, every kernel a backend provides is wrapped so that each call's result is compared with
what core's NumPy reference returns for the same arguments (read back to the host): the same structure
(one buffer, a tuple, a list), and for each buffer the same shape and dtype. A mismatch raises a
BackendError naming the kernel, the backend and both results. Off (the default), nothing is wrapped.

It is slow (every call goes through the host twice): a tool for developing a backend, not for running one.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import BackendError
from .compositions import reference

ENV = "NEURENIX_CHECK_KERNELS"
_UNCHECKED = {"synchronize"}  # no result to check


def enabled() -> bool:
    """Whether kernel calls are checked (``NEURENIX_CHECK_KERNELS`` set to anything but "" or "0")."""
    return os.environ.get(ENV, "") not in ("", "0")


def checked(name: str, fn, provider: str, to_numpy):
    """``fn`` (kernel ``name`` of backend ``provider``) checked against the reference at every call;
    ``to_numpy`` reads the backend's buffers to the host."""
    if name in _UNCHECKED:
        return fn

    def run(*args):
        out = fn(*args)
        _compare(name, provider, args, out, to_numpy)
        return out

    run.__name__ = run.__qualname__ = name
    run.__wrapped__ = fn
    return run


def _is_buffer(v) -> bool:
    if isinstance(v, np.generic):  # a 0-d result (np.float64 is also a Python float)
        return True
    return not isinstance(v, (bool, int, float, str, slice, type(None))) and hasattr(v, "shape") and \
        hasattr(v, "dtype")


def _host(v, to_numpy):
    """Arguments with every buffer read to a NumPy array (through tuples and lists)."""
    if isinstance(v, (tuple, list)):
        return type(v)(_host(x, to_numpy) for x in v)
    if isinstance(v, np.ndarray):
        return v
    return np.asarray(to_numpy(v)) if _is_buffer(v) else v


def _signature(v):
    """The structure of a kernel result, with (shape, dtype) for each buffer."""
    if isinstance(v, (tuple, list)):
        return tuple(_signature(x) for x in v)
    if v is None:
        return None
    if not _is_buffer(v):
        return ("not a buffer", type(v).__name__)
    return tuple(int(s) for s in v.shape), np.dtype(v.dtype).name


def _compare(name: str, provider: str, args: tuple, out, to_numpy) -> None:
    if name == "from_numpy":
        expected = _signature(args[0])
    elif name == "to_numpy":
        expected, out = _signature(args[0]), np.asarray(out)
    elif name == "full":
        expected = (tuple(args[0]), np.dtype(args[2]).name)
    else:
        expected = _signature(getattr(reference(), name)(*_host(args, to_numpy)))  # (core's NumPy kernels)
    got = _signature(out)
    if got != expected:
        raise BackendError(f"kernel {name!r} of backend {provider!r} returned {got}, but the contract (core's NumPy "
                           f"reference, same arguments) gives {expected} (shape, dtype per buffer); checked because "
                           f"{ENV} is set")
