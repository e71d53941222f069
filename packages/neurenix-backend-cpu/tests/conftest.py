"""Shared by the kernel tests: random inputs, a check of a C kernel against core's reference, and a switch
that sends every kernel down its C path."""

from contextlib import contextmanager

import numpy as np
import pytest
from neurenix_backend_cpu import KERNELS, conv, elementwise, reductions, softmax

import neurenix as nx
from neurenix.backend import reference

REF = vars(reference())  # NumPy's kernels, and core's compositions where NumPy has none
DTYPES = ["float32", "float64"]
TOL = {"float32": dict(rtol=1e-5, atol=1e-5), "float64": dict(rtol=1e-12, atol=1e-12)}
#: every size threshold, below which a kernel hands its work to NumPy
THRESHOLDS = ((elementwise, "MIN_ELEMENTWISE"), (elementwise, "MIN_BROADCAST"), (elementwise, "MIN_WHERE"),
              (reductions, "MIN_REDUCE"),
              (softmax, "MIN_EXP"), (conv, "MIN_CHANNELS"), (conv, "MIN_PIXELS"), (conv, "MIN_TASK_PIXELS"))


@contextmanager
def in_c(thresholds=THRESHOLDS):
    """``thresholds`` at zero and the kernels on two threads (same-shape elementwise ops take C only with more
    than one), so that the kernels they govern run in C even on small inputs."""
    mp, before = pytest.MonkeyPatch(), nx.get_num_threads()
    for module, name in thresholds:
        mp.setattr(module, name, 0)
    nx.set_num_threads(2)
    try:
        yield
    finally:
        nx.set_num_threads(before)
        mp.undo()


@pytest.fixture
def everything_in_c():
    with in_c():
        yield


def rand(*shape, dtype="float64", seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def check(name, *args, dtype):
    """The backend's kernel ``name`` gives the reference's result: structure, shapes, dtypes and values."""
    got, want = KERNELS[name](*args), REF[name](*args)
    for g, w in zip(got, want) if isinstance(want, tuple) else ((got, want),):
        if w is None:  # an output not asked for
            assert g is None
            continue
        assert np.asarray(g).shape == np.asarray(w).shape and np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_allclose(g, w, **TOL[dtype])
