"""The per-op path is short: ``a + b`` (two float32 (10, 40) tensors on cpu, core's NumPy kernel for add)
passes at most 5 Python functions before NumPy adds.

What is counted (``sys.setprofile``): every Python "call" event from entering the op, the first function
``a + b`` calls, until the kernel's C code runs; functions that returned before it (operand checks) count
too. Core's kernel for add is NumPy's ufunc, which has no Python frame, so NumPy's floating-point error
callback marks it: the operands overflow on purpose, and under ``np.errstate(over="call")`` the ufunc calls
the callback (not counted) as it finishes. What the op does after the kernel (wrapping the result in a
Tensor, the autograd check) is not counted. Measured on a second ``a + b``: the first fills the shape caches.
"""

import sys

import numpy as np
import pytest

import neurenix as nx
from neurenix.backend import reference


@pytest.fixture
def numpy_add(monkeypatch):
    """cpu's add is core's NumPy kernel, whichever faster cpu backend is installed."""
    monkeypatch.setattr(nx.Device("cpu").kernels, "add", reference().add)


def python_calls_until_numpy_adds(a, b) -> list:
    """The code of each Python function entered by ``a + b`` until NumPy's ufunc computes the sum."""
    codes, added = [], []

    def overflowed(kind, flag):  # NumPy's error callback: the ufunc calls it from inside
        pass

    def profile(frame, event, arg):
        if added or event != "call":
            return
        if frame.f_code is overflowed.__code__:
            added.append(True)
        else:
            codes.append(frame.f_code)

    with np.errstate(over="call", call=overflowed):
        sys.setprofile(profile)
        try:
            a + b
        finally:
            sys.setprofile(None)
    assert added, "NumPy's ufunc never computed the sum"
    return codes


@pytest.mark.usefixtures("numpy_add")
def test_a_plus_b_reaches_numpy_within_five_python_frames():
    big = np.full((10, 40), 3e38, np.float32)  # the sum overflows: NumPy's ufunc reports it
    a, b = nx.tensor(big), nx.tensor(big)
    with np.errstate(over="ignore"):
        a + b  # the shape caches filled
    codes = python_calls_until_numpy_adds(a, b)
    assert len(codes) <= 5, [c.co_name for c in codes]
