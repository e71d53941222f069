"""Elementwise launches: plans made once per kernel and operand layout, broadcast strides, scalars, views."""

import numpy as np
import pytest
from neurenix_gpu.ops import launch
from neurenix_gpu.ops.launch import View, broadcast_shape, broadcast_strides, contiguous_strides


def test_strides():
    assert contiguous_strides((2, 3, 4)) == (12, 4, 1) and contiguous_strides(()) == ()
    assert broadcast_strides((3, 1), (1, 1), (2, 3, 5)) == (0, 1, 0)
    assert broadcast_shape((4, 1, 3), (2, 1)) == (4, 2, 3) and broadcast_shape((), (2,)) == (2,)


def test_an_op_on_shapes_seen_before_reuses_its_plan(backend, kernels):
    dev = backend.device(0)
    a, b = kernels["from_numpy"](np.ones((5, 3)), 0), kernels["from_numpy"](np.arange(3.0), 0)
    kernels["add"](a, b)
    plans = dict(dev.plans)
    kernels["add"](kernels["from_numpy"](np.ones((5, 3)), 0), b)
    assert dev.plans == plans
    key = ("binary_f64", (5, 3), (5, 3), (3,))
    assert key in plans and list(plans[key].struct.stride[2][0:2]) == [0, 1]  # b broadcast along the rows


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow", "maximum", "minimum",
                                  "eq", "ne", "lt", "le", "gt", "ge"])
def test_binary_kernels_with_buffers_and_scalars(kernels, name):
    ref = getattr(np, {"sub": "subtract", "mul": "multiply", "div": "divide", "pow": "power", "eq": "equal",
                       "ne": "not_equal", "lt": "less", "le": "less_equal", "gt": "greater",
                       "ge": "greater_equal"}.get(name, name))
    x, y = np.array([[0.5, 2.0, 3.0]]), np.array([[2.0], [-1.5]])
    a, b = kernels["from_numpy"](x, 0), kernels["from_numpy"](y, 0)
    k, get = kernels[name], kernels["to_numpy"]
    np.testing.assert_array_equal(get(k(a, b)), ref(x, y))
    np.testing.assert_array_equal(get(k(a, 1.5)), ref(x, 1.5))
    np.testing.assert_array_equal(get(k(2.0, b)), ref(2.0, y))


def test_a_scalar_leaves_the_shared_plan_untouched(backend, kernels):
    x = kernels["from_numpy"](np.arange(4.0), 0)
    kernels["mul"](x, 3.0)
    plan = backend.device(0).plans[("binary_f64", (4,), (4,), None)]
    np.testing.assert_array_equal(kernels["to_numpy"](kernels["mul"](x, -2.0)), np.arange(4.0) * -2.0)
    assert plan.struct.fscal[2] == 0.0  # the values went in a copy


def test_views_write_into_part_of_a_buffer(backend, kernels):
    out = kernels["full"]((3, 4), 0, np.int64, 0)
    src = kernels["from_numpy"](np.array([[1, 2], [3, 4]]), 0)
    launch.elementwise("copy_i64_i64", View(out, (2, 2), (4, 1), 5), (src,))  # rows 1-2, columns 1-2
    want = np.zeros((3, 4), np.int64)
    want[1:, 1:3] = [[1, 2], [3, 4]]
    np.testing.assert_array_equal(kernels["to_numpy"](out), want)


def test_empty_outputs_launch_nothing(backend, kernels):
    launches = backend.driver.emu.launches
    out = kernels["add"](kernels["from_numpy"](np.ones((0, 3)), 0), kernels["from_numpy"](np.ones(3), 0))
    assert out.shape == (0, 3) and backend.driver.emu.launches == launches


def test_too_many_dimensions_are_refused(kernels):
    with pytest.raises(ValueError, match="more than 8 dimensions"):
        kernels["neg"](kernels["from_numpy"](np.ones((1,) * 9), 0))


def test_plans_are_bounded(backend, kernels, monkeypatch):
    monkeypatch.setattr(launch, "_PLAN_LIMIT", 3)
    for n in range(1, 6):
        kernels["neg"](kernels["from_numpy"](np.ones(n), 0))
        assert len(backend.device(0).plans) <= 3
