"""Broadcasting binary arithmetic and relu in C against NumPy's kernels, with the size thresholds at zero so
that C runs even on these small inputs: broadcast patterns, scalars, empty and non-contiguous inputs, NaN."""

import numpy as np
import pytest
from neurenix_backend_cpu import KERNELS, elementwise

from .conftest import DTYPES, REF, check, rand

pytestmark = pytest.mark.usefixtures("everything_in_c")

SHAPES = [((4, 5), (4, 5)), ((4, 5), (5,)), ((4, 5), (4, 1)), ((1, 5), (4, 1)), ((2, 3, 4, 5), (1, 3, 1, 1)),
          ((3, 4), ()), ((2, 3, 4, 5), (2, 1, 4, 1)), ((0, 5), (5,)), ((2, 1, 3, 1, 4), (5, 1, 6, 1))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("sa", "sb"), SHAPES, ids=str)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "minimum"])
def test_binary_broadcast_patterns(op, sa, sb, dtype):
    a, b = rand(*sa, dtype=dtype), rand(*sb, dtype=dtype, seed=1)
    check(op, a, b, dtype=dtype)
    check(op, b, a, dtype=dtype)
    check(op, a, 2.5, dtype=dtype)
    check(op, -3, a, dtype=dtype)


def test_binary_non_contiguous_and_nan():
    a = rand(6, 4).T  # a transposed view: never reaches C
    check("add", a, rand(4, 6), dtype="float64")
    x, y = np.array([np.nan, 1.0, 2.0]), np.array([0.0, np.nan, 1.0])
    for op in ("maximum", "minimum"):
        np.testing.assert_array_equal(KERNELS[op](x, y), REF[op](x, y))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 7), (0,), (2, 3, 4, 5)], ids=str)
def test_relu_and_backward(shape, dtype):
    x, g = rand(*shape, dtype=dtype), rand(*shape, dtype=dtype, seed=2)
    check("relu", x, dtype=dtype)
    check("relu_backward", g, x, dtype=dtype)


def test_other_dtypes_fall_through_to_numpy():
    i = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(KERNELS["add"](i, i), i + i)


def test_plan_caches_survive_clearing_by_another_thread(monkeypatch):
    """A plan cache cleared between the lookup and the read must not raise (one lookup, not two)."""
    class Clearing(dict):
        def __contains__(self, key):  # the old code's membership test, then another thread clears
            found = dict.__contains__(self, key)
            self.clear()
            return found

        def get(self, key, default=None):
            value = dict.get(self, key, default)
            self.clear()
            return value
    plans = Clearing()
    monkeypatch.setattr(elementwise, "_plans", plans)
    assert elementwise._broadcast_plan((3, 4), (4,)) == elementwise._broadcast_plan((3, 4), (4,))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("a_kind, b_kind", [("array", "array"), ("array", "number"), ("number", "array")])
def test_where_selects_as_numpy(a_kind, b_kind, dtype):
    """where(cond, a, b) in C, bit for bit NumPy's: arrays or numbers on either side, NaN, -0.0 and infinities
    carried through unchanged, every size from empty to several threads' worth."""
    for n in (0, 1, 7, 5000, 70_001):
        x = rand(n, dtype=dtype, seed=n)
        x[::7] = np.nan
        x[1::11] = -0.0
        x[2::13] = np.inf
        cond = rand(n, seed=n + 1) > 0
        a = x if a_kind == "array" else -0.0
        b = x[::-1].copy() if b_kind == "array" else float("nan")
        got, want = KERNELS["where"](cond, a, b), REF["where"](cond, a, b)
        assert got.dtype == want.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))  # the bits, signed zeros too


def test_where_leaves_broadcasts_and_other_dtypes_to_numpy():
    cond = rand(3, 4) > 0
    for a, b in ((rand(3, 4), rand(4)), (np.arange(12).reshape(3, 4), 0), (rand(3, 4).T.copy().T, 1.0),
                 (cond, ~cond)):
        np.testing.assert_array_equal(KERNELS["where"](cond, a, b), np.where(cond, a, b))
