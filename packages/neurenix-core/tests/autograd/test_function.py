"""autograd.Function: custom ops with PyTorch's API, gradients of first and second order against finite
differences, several outputs, non-tensor arguments, and the errors of a wrong backward."""

import numpy as np
import pytest

import neurenix as nx
from neurenix.autograd import Function, grad
from neurenix.testing import gradcheck, gradgradcheck


class Exp(Function):
    """exp, saving its output for backward (so the second order flows through the saved output)."""

    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        (y,) = ctx.saved_tensors
        return grad_y * y


class ScaledClamp(Function):
    """``clamp(x, lo, hi) * w``, lo and hi numbers; with ``straight_through`` x's gradient ignores the clamp."""

    @staticmethod
    def forward(ctx, x, lo, hi, w, straight_through=False):
        ctx.save_for_backward(x, w)
        ctx.bounds, ctx.straight_through = (lo, hi), straight_through
        return x.clamp(lo, hi) * w

    @staticmethod
    def backward(ctx, grad_out):
        x, w = ctx.saved_tensors
        lo, hi = ctx.bounds
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = grad_out * w if ctx.straight_through else grad_out * w * ((x >= lo) & (x <= hi)).to(x.dtype)
        if ctx.needs_input_grad[3]:
            gw = grad_out * x.clamp(lo, hi)
        return gx, None, None, gw, None


class SinCosArgmax(Function):
    """Three outputs: sin(x) * k, x**3, and the (non-differentiable) index of the largest element."""

    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x)
        ctx.k = k
        index = x.argmax()
        ctx.mark_non_differentiable(index)
        return x.sin() * k, x ** 3, index

    @staticmethod
    def backward(ctx, g_sin, g_cube, g_index):
        (x,) = ctx.saved_tensors
        assert g_index.shape == () and g_index.sum().item() == 0
        return g_sin * x.cos() * ctx.k + g_cube * 3 * x ** 2, None


class Square(Function):
    """x**2 through PyTorch 2's split style: forward without ctx, setup_context saves."""

    @staticmethod
    def forward(x):
        return x * x

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g


def x64(*shape, seed=0):
    values = np.random.default_rng(seed).normal(size=shape)
    return nx.tensor(values, dtype=nx.float64, requires_grad=True)


CASES = {
    "exp": (lambda x, w: Exp.apply(x), lambda x, w: x.exp()),
    "clamp": (lambda x, w: ScaledClamp.apply(x, -0.5, 0.5, w), lambda x, w: x.clamp(-0.5, 0.5) * w),
    "several_outputs": (lambda x, w: SinCosArgmax.apply(x, 2.0)[:2], lambda x, w: ((x.sin() * 2.0), x ** 3)),
    "setup_context": (lambda x, w: Square.apply(x) * w, lambda x, w: x * x * w),
    "composed": (lambda x, w: Exp.apply(Square.apply(x)).sum() * w, lambda x, w: (x * x).exp().sum() * w),
}


@pytest.mark.parametrize("case", CASES)
def test_first_and_second_order_against_finite_differences(case):
    fn = CASES[case][0]
    x, w = x64(2, 3), x64(2, 3, seed=1)
    assert gradcheck(fn, (x, w))
    assert gradgradcheck(fn, (x, w))


@pytest.mark.parametrize("case", [c for c in CASES if CASES[c][1] is not None])
def test_values_and_gradients_equal_the_built_in_ops(case):
    custom, builtin = CASES[case]
    x, w = x64(2, 3), x64(2, 3, seed=1)

    def flat(out):
        return out if isinstance(out, nx.Tensor) else sum(o.sum() for o in out)

    a, e = flat(custom(x, w)), flat(builtin(x, w))
    np.testing.assert_allclose(a.detach().numpy(), e.detach().numpy(), rtol=1e-14)
    for ga, ge in zip(grad(a.sum(), [x, w], allow_unused=True), grad(e.sum(), [x, w], allow_unused=True)):
        if ge is not None:
            np.testing.assert_allclose(ga.numpy(), ge.numpy(), rtol=1e-12)


def test_straight_through_passes_the_gradient_where_clamp_would_not():
    x = nx.tensor([-2.0, 0.0, 3.0], dtype=nx.float64, requires_grad=True)
    w = nx.tensor(2.0, dtype=nx.float64)
    y = ScaledClamp.apply(x, -1.0, 1.0, w, True)
    np.testing.assert_array_equal(y.detach().numpy(), [-2.0, 0.0, 2.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0, 2.0])


def test_node_name_outputs_and_needs_input_grad():
    seen = {}

    class Probe(Function):
        @staticmethod
        def forward(ctx, a, b, n):
            seen["needs"] = ctx.needs_input_grad
            return a * b * n

        @staticmethod
        def backward(ctx, g):
            return g, None, None

    a, b = x64(3), nx.tensor([1.0, 2.0, 3.0], dtype=nx.float64)
    y = Probe.apply(a, b, 2)
    assert seen["needs"] == (True, False, False)
    assert repr(y.grad_fn) == "<ProbeBackward>" and y.requires_grad
    with nx.no_grad():
        z = Probe.apply(a, b, 2)
    assert not z.requires_grad and seen["needs"] == (False, False, False)


def test_non_differentiable_and_non_tensor_outputs():
    class Split(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2, "label", (x > 0)

        @staticmethod
        def backward(ctx, g, g_label, g_mask):
            assert g_label is None and g_mask.dtype == nx.bool_
            return 2 * g

    x = x64(4)
    y, label, mask = Split.apply(x)
    assert label == "label" and not mask.requires_grad and y.requires_grad
    (g,) = grad(y.sum(), x)
    np.testing.assert_array_equal(g.numpy(), np.full(4, 2.0))


def test_set_materialize_grads_false_gives_none_for_unused_outputs():
    class Pair(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            idx = x.argmax()
            ctx.mark_non_differentiable(idx)
            return x * 3, idx

        @staticmethod
        def backward(ctx, g, g_idx):
            assert g_idx is None
            return 3 * g

    x = x64(3)
    (g,) = grad(Pair.apply(x)[0].sum(), x)
    np.testing.assert_array_equal(g.numpy(), np.full(3, 3.0))


def test_input_returned_as_is_gets_a_node_of_its_own():
    class Identity(Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 5

    x = x64(2)
    y = Identity.apply(x)
    assert y is not x and x.is_leaf and not y.is_leaf
    (g,) = grad(y.sum(), x)
    np.testing.assert_array_equal(g.numpy(), [5.0, 5.0])


def test_a_broadcast_gradient_is_summed_back_to_the_input_shape():
    class AddBias(Function):
        @staticmethod
        def forward(ctx, x, b):
            return x + b

        @staticmethod
        def backward(ctx, g):
            return g, g  # b's gradient has x's shape: summed back as broadcasting needs

    x, b = x64(4, 3), x64(1, 3, seed=2)
    _, gb = grad(AddBias.apply(x, b).sum(), [x, b])
    np.testing.assert_array_equal(gb.numpy(), np.full((1, 3), 4.0))


class WrongCount(Function):
    @staticmethod
    def forward(ctx, x, y):
        return x * y

    @staticmethod
    def backward(ctx, g):
        return g


class WrongShape(Function):
    @staticmethod
    def forward(ctx, x, weight):
        return (x * weight).sum()

    @staticmethod
    def backward(ctx, g):
        return g.expand(3), g.expand(5)


class GradForNumber(Function):
    @staticmethod
    def forward(ctx, x, scale):
        return x * scale

    @staticmethod
    def backward(ctx, g):
        return g, g


@pytest.mark.parametrize("fn, message", [
    (WrongCount, r"WrongCount.backward returned an incorrect number of gradients \(expected 2, got 1\)"),
    (WrongShape, r"gradient of shape \(5,\) for input 1 \(weight\), which has shape \(3,\)"),
    (GradForNumber, r"a gradient for input 1 \(scale\), which is a float"),
])
def test_a_wrong_backward_is_named(fn, message):
    x = x64(3)
    y = fn.apply(x, 2.0) if fn is GradForNumber else fn.apply(x, x64(3, seed=1))
    with pytest.raises(RuntimeError, match=message):
        grad(y.sum(), x)


def test_misuse_is_explained():
    with pytest.raises(RuntimeError, match=r"Exp.apply"):
        Exp()(x64(2))
    with pytest.raises(TypeError, match="save_for_backward: argument 0 is a int"):
        class SavesNumber(Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(3)
                return x
        SavesNumber.apply(x64(2))
