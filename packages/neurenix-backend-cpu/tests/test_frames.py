"""The per-op path is short: ``a + b`` (two float32 (10, 40) tensors on cpu) passes at most 5 Python
functions from the op to the return of this backend's kernel, C call included.

What is counted (``sys.setprofile``): every Python "call" event from entering the op, the first function
``a + b`` calls, until the kernel (``elementwise.add``) returns: the op, its operand checks, the kernel, and
whatever the kernel calls (its broadcast plan). Two paths: at this size the kernel hands the operands to
NumPy's ufunc; with every threshold at zero and two threads (``in_c``) it calls its cffi function, which
must show among the "c_call" events. What the op does after the kernel (wrapping the result in a Tensor, the
autograd check) is not counted. Measured on a second ``a + b``: the first fills the shape caches.
"""

import sys
from contextlib import nullcontext

import pytest
from neurenix_backend_cpu import elementwise, native

import neurenix as nx

from .conftest import in_c


def profile_until_the_kernel_returns(a, b) -> tuple[list, list]:
    """The code of each Python function entered by ``a + b`` until the kernel returns, and the C functions
    called on the way."""
    codes, c_calls, returned = [], [], []

    def profile(frame, event, arg):
        if returned:
            return
        if event == "call":
            codes.append(frame.f_code)
        elif event == "c_call":
            c_calls.append(arg)
        elif event == "return" and frame.f_code is elementwise.add.__code__:
            returned.append(True)

    sys.setprofile(profile)
    try:
        a + b
    finally:
        sys.setprofile(None)
    assert returned, "the backend's add kernel never ran"
    return codes, c_calls


@pytest.mark.parametrize("path", ["numpy", "c"])
def test_a_plus_b_reaches_the_kernel_within_five_python_frames(path):
    a, b = nx.randn(10, 40), nx.randn(10, 40)
    assert nx.Device("cpu").kernels.add is elementwise.add
    with in_c() if path == "c" else nullcontext():
        a + b  # the shape caches filled
        codes, c_calls = profile_until_the_kernel_returns(a, b)
    assert (native.lib.add_f32 in c_calls) == (path == "c")
    assert len(codes) <= 5, [c.co_name for c in codes]
