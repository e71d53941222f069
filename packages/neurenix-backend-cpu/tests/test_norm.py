"""Batch normalisation in C against core's composition: per channel and per group, every subset of the
gradients, and the layouts that fall back to the composition."""

import numpy as np
import pytest
from neurenix_backend_cpu import norm

from .conftest import DTYPES, REF, check, rand

pytestmark = pytest.mark.usefixtures("everything_in_c")


def _counted(monkeypatch, dtype, *tables) -> list:
    """A list that grows by one at each call of the C functions of ``tables`` for ``dtype``."""
    calls = []
    for table in tables:
        fn = table[np.dtype(dtype)]
        monkeypatch.setitem(table, np.dtype(dtype), lambda *args, fn=fn: calls.append(1) or fn(*args))
    return calls


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "groups", "per_group"), [((4, 3, 2, 2), 1, False), ((6, 3, 5), 2, True),
                                                            ((6, 3, 5), 3, False), ((5, 4), 1, False),
                                                            ((8, 2, 3, 7), 4, True)], ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_and_backward(shape, groups, per_group, affine, dtype, monkeypatch):
    """Per-channel (and per-group: per-task) statistics and every subset of the gradients, against core's
    composition; counted, so a routing change cannot send them to NumPy."""
    calls = _counted(monkeypatch, dtype, norm._bn, norm._bn_bw)
    c = shape[1]
    pshape = (groups, c) if per_group else (c,)
    x, g = rand(*shape, dtype=dtype) * 3 + 1, rand(*shape, dtype=dtype, seed=1)
    w, b = (rand(*pshape, dtype=dtype, seed=2), rand(*pshape, dtype=dtype, seed=3)) if affine else (None, None)
    check("batch_norm", x, w, b, groups, 1e-5, dtype=dtype)
    _, mean, var = REF["batch_norm"](x, w, b, groups, 1e-5)
    for needs in ((True, affine, affine), (False, affine, False), (True, False, False)):
        check("batch_norm_backward", g, x, mean, var, w, groups, 1e-5, needs, dtype=dtype)
    assert len(calls) == 4


def test_batch_norm_falls_back_on_mixed_parameters():
    x = rand(4, 3, 5)
    check("batch_norm", x, rand(3), rand(2, 3), 2, 1e-5, dtype="float64")  # one per channel, one per group
    check("batch_norm", x.swapaxes(1, 2), None, None, 1, 1e-5, dtype="float64")  # not contiguous


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "groups", "per_group"), [((4, 3, 4, 4), 1, False), ((6, 2, 5, 7), 2, True),
                                                            ((6, 3, 3, 2), 3, False), ((2, 4, 9, 9), 1, True)],
                         ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_relu_pool_and_backward(shape, groups, per_group, affine, dtype, monkeypatch):
    """The fused batch norm, ReLU and 2x2 max-pool against core's composition of the three (odd sizes leave a
    row or column out of every window), every subset of the gradients; counted, as above."""
    calls = _counted(monkeypatch, dtype, norm._bnp, norm._bnp_bw)
    c = shape[1]
    pshape = (groups, c) if per_group else (c,)
    x, g = rand(*shape, dtype=dtype) * 3 + 1, rand(shape[0], c, shape[2] // 2, shape[3] // 2, dtype=dtype, seed=1)
    w, b = (rand(*pshape, dtype=dtype, seed=2), rand(*pshape, dtype=dtype, seed=3)) if affine else (None, None)
    check("batch_norm_relu_pool", x, w, b, groups, 1e-5, dtype=dtype)
    _, mean, var = REF["batch_norm_relu_pool"](x, w, b, groups, 1e-5)
    for needs in ((True, affine, affine), (False, affine, False), (True, False, False)):
        check("batch_norm_relu_pool_backward", g, x, mean, var, w, b, groups, 1e-5, needs, dtype=dtype)
    assert len(calls) == 4


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_relu_pool_ties_and_nan(dtype):
    """Ties go to the first position of a window and a NaN wins it (its gradient is zero, as ReLU's at NaN):
    as max_pool2d after relu. Images of repeated values make many ties; a NaN makes its plane's statistics NaN."""
    x = np.repeat(np.repeat(rand(3, 2, 3, 3, dtype=dtype).round(), 2, axis=2), 2, axis=3)  # 2x2 blocks of one value
    g = rand(3, 2, 3, 3, dtype=dtype, seed=1)
    for xs in (x, np.where(np.arange(x.size).reshape(x.shape) % 7 == 3, np.nan, x).astype(dtype)):
        check("batch_norm_relu_pool", xs, None, None, 1, 1e-5, dtype=dtype)
        _, mean, var = REF["batch_norm_relu_pool"](xs, None, None, 1, 1e-5)
        check("batch_norm_relu_pool_backward", g, xs, mean, var, None, None, 1, 1e-5, (True, False, False),
              dtype=dtype)


def test_batch_norm_relu_pool_falls_back():
    """Layouts the C kernel does not take go to the composition: not contiguous, mixed parameters."""
    x = rand(4, 3, 4, 4)
    check("batch_norm_relu_pool", x.swapaxes(2, 3), None, None, 1, 1e-5, dtype="float64")
    check("batch_norm_relu_pool", x, rand(3), rand(2, 3), 2, 1e-5, dtype="float64")
