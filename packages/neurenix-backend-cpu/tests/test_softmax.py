"""exp, the softmax family and cross entropy in C against NumPy's kernels and core's compositions, with the
size thresholds at zero: rows along the last axis (vector tails of every length), other axes, extreme logits."""

import numpy as np
import pytest
from neurenix_backend_cpu import KERNELS

from .conftest import DTYPES, REF, check, rand

pytestmark = pytest.mark.usefixtures("everything_in_c")

SOFTMAX_SHAPES = [((5, 7), 1), ((5, 7), 0), ((2, 3, 4), 1), ((0, 3), 1), ((3, 1), 1), ((4, 37), 1), ((2, 3, 20), 2)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "axis"), SOFTMAX_SHAPES, ids=str)
@pytest.mark.parametrize("kernel", ["softmax", "log_softmax"])
def test_softmax_family(kernel, shape, axis, dtype):
    """Forward and first-order backward; rows along the last axis go to C (vector tails of every length)."""
    x, g = rand(*shape, dtype=dtype) * 10, rand(*shape, dtype=dtype, seed=3)
    check(kernel, x, axis, dtype=dtype)
    check(f"{kernel}_backward", g, REF[kernel](x, axis), axis, dtype=dtype)


def test_softmax_rows_of_extreme_logits():
    x = np.array([[0.0, -np.inf, 1.0], [1e30, 0.0, -1e30], [np.nan, 0.0, 1.0], [-np.inf, -np.inf, 0.0]])
    for kernel in ("softmax", "log_softmax"):
        with np.errstate(all="ignore"):
            np.testing.assert_allclose(KERNELS[kernel](x, 1), REF[kernel](x, 1), rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_against_numpy_over_its_range(dtype):
    """The vectorised exp: within a few ulp everywhere it is finite, exact at 0, inf and -inf, NaN kept; the
    float denormal range (below 2e-38) and double's below 1e-307 come out as 0."""
    lo, hi = (-86.6, 88.7) if dtype == "float32" else (-707.0, 709.7)
    x = np.concatenate([np.linspace(lo, hi, 100003), [0.0, -np.inf, np.inf, np.nan, hi + 1, lo - 50]]).astype(dtype)
    with np.errstate(over="ignore"):
        got, want = KERNELS["exp"](x), np.exp(x)
    finite = np.isfinite(want) & (x >= lo)
    np.testing.assert_allclose(got[finite], want[finite], rtol=4 * np.finfo(dtype).eps)
    assert got[-6] == 1 and got[-5] == 0 and got[-4] == np.inf and np.isnan(got[-3]) and got[-2] == np.inf
    assert got[-1] == 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7, 5), (3, 1), (2, 19), (1, 64)], ids=str)
def test_cross_entropy_and_backward(shape, dtype):
    x, g = rand(*shape, dtype=dtype) * 4, rand(shape[0], dtype=dtype, seed=2)
    labels = np.random.default_rng(1).integers(0, shape[1], shape[0])
    for probs in (np.eye(shape[1], dtype=dtype)[labels], np.abs(rand(*shape, dtype=dtype, seed=5))):
        check("cross_entropy", x, probs, dtype=dtype)
        check("cross_entropy_backward", g, REF["softmax"](x, 1), probs, dtype=dtype)
