"""Reductions: values against NumPy, and a plan per kernel, shape, axes and keepdim."""

import numpy as np
import pytest


@pytest.mark.parametrize("axes, keepdim", [((1,), False), ((0, 2), True), ((0, 1, 2), False)])
def test_reductions_match_numpy(kernels, axes, keepdim):
    x = np.random.default_rng(0).standard_normal((3, 4, 5))
    buf, get = kernels["from_numpy"](x, 0), kernels["to_numpy"]
    for name, ref in (("sum", np.sum), ("max", np.max), ("min", np.min)):
        np.testing.assert_allclose(get(kernels[name](buf, axes, keepdim)), ref(x, axis=axes, keepdims=keepdim))
    np.testing.assert_array_equal(get(kernels["argmax"](buf, axes[0], keepdim)),
                                  np.argmax(x, axis=axes[0], keepdims=keepdim))


def test_sums_of_bools_and_over_nothing(kernels):
    get = kernels["to_numpy"]
    b = get(kernels["sum"](kernels["from_numpy"](np.array([[True, False, True]]), 0), (1,), False))
    assert b.dtype == np.int64 and b.tolist() == [2]
    np.testing.assert_array_equal(get(kernels["sum"](kernels["from_numpy"](np.ones((2, 0)), 0), (1,), False)),
                                  [0.0, 0.0])


def test_a_reduction_on_a_layout_seen_before_reuses_its_plan(backend, kernels):
    x = kernels["from_numpy"](np.ones((6, 7)), 0)
    kernels["sum"](x, (0,), True)
    plans = dict(backend.device(0).plans)
    kernels["sum"](kernels["from_numpy"](np.zeros((6, 7)), 0), (0,), True)
    assert backend.device(0).plans == plans and plans[("reduce_f64", (6, 7), (0,), True)].shape == (1, 7)
