"""Adam and SGD steps in C against core's compositions: weight decay (coupled and decoupled), maximize,
momentum, dampening, Nesterov, the first step without buffers, empty parameters, and mixed dtypes."""

import numpy as np
import pytest
from neurenix_backend_cpu import KERNELS

from .conftest import DTYPES, REF, TOL, rand


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", [dict(), dict(weight_decay=0.1), dict(weight_decay=0.1, decoupled=True),
                                     dict(maximize=True)], ids=str)
def test_adam_step(options, dtype):
    shapes = [(3, 4), (5,), (0,), (2, 2, 2)]
    ps, gs, ms, vs = ([rand(*s, dtype=dtype, seed=i + j) ** (2 if j == 3 else 1) for i, s in enumerate(shapes)]
                      for j in range(4))
    args = (ps, gs, ms, vs, 3, 0.01, 0.9, 0.99, 1e-8, options.get("weight_decay", 0.0),
            options.get("decoupled", False), options.get("maximize", False))
    for got, want in zip(KERNELS["adam_step"](*args), REF["adam_step"](*args)):
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", [(0.0, 0.0, False), (0.9, 0.1, False), (0.9, 0.0, True)], ids=str)
def test_sgd_step(options, dtype):
    momentum, dampening, nesterov = options
    ps, gs = [rand(3, 4, dtype=dtype), rand(5, dtype=dtype)], [rand(3, 4, dtype=dtype, seed=1), rand(5, dtype=dtype)]
    for bufs in ([None, None], [rand(3, 4, dtype=dtype, seed=2), rand(5, dtype=dtype, seed=3)]):
        args = (ps, gs, bufs, 0.1, momentum, dampening, nesterov, 0.01, False)
        for got, want in zip(KERNELS["sgd_step"](*args), REF["sgd_step"](*args)):
            for g, w in zip(got, want):
                assert (g is None) == (w is None)
                if g is not None:
                    np.testing.assert_allclose(g, w, **TOL[dtype])


def test_mixed_dtypes_fall_through_to_numpy():
    mixed = KERNELS["adam_step"]([np.ones(2, np.float32)], [np.ones(2)], [np.zeros(2)], [np.zeros(2)], 1, 0.1, 0.9,
                                 0.99, 1e-8, 0.0, False, False)
    assert mixed[0][0].shape == (2,)
