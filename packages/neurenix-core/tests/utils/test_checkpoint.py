"""checkpoint: the same values and gradients (of first and second order) as the plain computation,
no graph kept between forward and backward, and the random state replayed for the recomputation."""

import weakref

import numpy as np
import pytest

import neurenix as nx
from neurenix.autograd import grad
from neurenix.testing import gradcheck, gradgradcheck
from neurenix.utils.checkpoint import checkpoint


def step(w, b):
    """One gradient step on a small loss, as MAML's inner loop takes: differentiates inside."""
    x = nx.tensor(np.linspace(-1, 1, 6).reshape(3, 2), dtype=nx.float64)
    loss = ((x @ w + b).tanh() ** 2).sum()
    gw, gb = grad(loss, [w, b], create_graph=True)
    return w - 0.3 * gw, b - 0.3 * gb


def chained(w, b, steps=3, use_checkpoint=True):
    for _ in range(steps):
        w, b = checkpoint(step, w, b) if use_checkpoint else step(w, b)
    return (w ** 2).sum() + b.sum()


def params():
    g = np.random.default_rng(0)
    return (nx.tensor(g.normal(size=(2, 2)), dtype=nx.float64, requires_grad=True),
            nx.tensor(g.normal(size=(2,)), dtype=nx.float64, requires_grad=True))


def test_values_and_gradients_equal_the_plain_computation():
    w, b = params()
    plain = chained(w, b, use_checkpoint=False)
    ckpt = chained(w, b)
    np.testing.assert_allclose(ckpt.item(), plain.item(), rtol=1e-14)
    for a, e in zip(grad(ckpt, [w, b]), grad(plain, [w, b])):
        np.testing.assert_allclose(a.numpy(), e.numpy(), rtol=1e-12, atol=1e-14)


def test_first_and_second_order_against_finite_differences():
    w, b = params()
    assert gradcheck(lambda w, b: chained(w, b, steps=2), (w, b))
    assert gradgradcheck(lambda w, b: chained(w, b, steps=2), (w, b))


def test_single_output_and_constant_inputs():
    x = nx.tensor([0.5, -1.0, 2.0], dtype=nx.float64, requires_grad=True)
    c = nx.tensor([1.0, 2.0, 3.0], dtype=nx.float64)
    y = checkpoint(lambda x, c: (x * c).sin(), x, c)
    (g,) = grad(y.sum(), x)
    np.testing.assert_allclose(g.numpy(), np.cos(x.numpy() * c.numpy()) * c.numpy(), rtol=1e-14)


def test_no_graph_is_kept_between_forward_and_backward():
    kept = []

    def fn(x):
        y = x.exp()
        kept.append(weakref.ref(y))  # an intermediate of fn: alive only while fn's graph is
        return y * 2

    x = nx.tensor([1.0, 2.0], dtype=nx.float64, requires_grad=True)
    out = checkpoint(fn, x)
    assert kept[0]() is None
    (g,) = grad(out.sum(), x)
    np.testing.assert_allclose(g.numpy(), 2 * np.exp(x.numpy()), rtol=1e-14)
    assert len(kept) == 2  # recomputed once in the backward pass


def test_random_state_is_replayed_for_the_recomputation():
    x = nx.tensor(np.ones(50), dtype=nx.float64, requires_grad=True)
    out = checkpoint(lambda x: nx.nn.functional.dropout(x, 0.5), x)
    nx.randn(3)  # move the generator on before the backward pass
    (g,) = grad(out.sum(), x)
    np.testing.assert_array_equal(g.numpy(), out.detach().numpy())  # the same mask, scaled by 2 both times


def test_without_grad_it_is_a_plain_call():
    x = nx.tensor([1.0, 2.0])
    assert not checkpoint(lambda x: x * 2, x).requires_grad
    with nx.no_grad():
        assert not checkpoint(lambda x: x * 2, x.requires_grad_()).requires_grad


def test_bad_outputs_are_named():
    x = nx.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="must return a Tensor"):
        checkpoint(lambda x: 3.0, x)
    with pytest.raises(TypeError, match="output 1 is neurenix.int64"):
        checkpoint(lambda x: (x, x.long()), x)
