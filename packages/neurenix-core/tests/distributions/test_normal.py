"""Normal: shapes, sample statistics, the reparameterised gradient, log_prob / cdf / entropy against NumPy
formulas, gradients of log_prob (first and second order) against finite differences, and argument checks."""

import math

import numpy as np
import pytest

import neurenix as nx
from neurenix.autograd import grad
from neurenix.distributions import Distribution, Normal
from neurenix.testing import gradcheck, gradgradcheck


def f64(values, requires_grad=False):
    return nx.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


@pytest.mark.parametrize("loc, scale, batch", [(0.0, 1.0, ()), (f64([0.0, 1.0]), 2.0, (2,)),
                                               (f64([[0.0], [1.0]]), f64([1.0, 2.0, 3.0]), (2, 3))])
@pytest.mark.parametrize("sample_shape", [(), (4,), (2, 5)])
def test_shapes(loc, scale, batch, sample_shape):
    d = Normal(loc, scale)
    assert d.batch_shape == batch and d.event_shape == ()
    assert d.sample(sample_shape).shape == d.rsample(sample_shape).shape == sample_shape + batch
    assert d.mean.shape == d.variance.shape == d.stddev.shape == d.entropy().shape == batch


def test_samples_have_the_mean_and_variance():
    nx.manual_seed(0)
    d = Normal(f64([-1.0, 2.0]), f64([0.5, 3.0]))
    s = d.sample((20000,)).numpy()
    np.testing.assert_allclose(s.mean(0), d.mean.numpy(), atol=0.06)
    np.testing.assert_allclose(s.var(0), d.variance.numpy(), rtol=0.05)
    assert s.dtype == np.float64 and not d.sample().requires_grad


def test_rsample_is_reparameterised():
    loc, scale = f64([0.5, -1.0], True), f64([2.0, 0.5], True)
    nx.manual_seed(3)
    draw = Normal(loc, scale).rsample((3,))
    nx.manual_seed(3)
    eps = nx.randn(3, 2, dtype=nx.float64)
    gl, gs = grad(draw.sum(), [loc, scale])
    np.testing.assert_allclose(gl.numpy(), [3.0, 3.0])
    np.testing.assert_allclose(gs.numpy(), eps.numpy().sum(0), rtol=1e-12)


def test_log_prob_cdf_and_entropy_follow_the_formulas():
    loc, scale, x = np.array([0.0, 1.0, -2.0]), np.array([1.0, 0.5, 3.0]), np.array([0.3, 1.5, -2.0])
    d = Normal(f64(loc), f64(scale))
    expected = -((x - loc) ** 2) / (2 * scale ** 2) - np.log(scale) - 0.5 * math.log(2 * math.pi)
    np.testing.assert_allclose(d.log_prob(f64(x)).numpy(), expected, rtol=1e-14)
    cdf = [0.5 * (1 + math.erf((a - m) / (s * math.sqrt(2)))) for a, m, s in zip(x, loc, scale)]
    np.testing.assert_allclose(d.cdf(f64(x)).numpy(), cdf, rtol=1e-7)  # (erf is an approximation)
    np.testing.assert_allclose(d.entropy().numpy(), 0.5 * np.log(2 * math.pi * math.e * scale ** 2), rtol=1e-14)


def test_log_prob_gradients_against_finite_differences():
    x = f64([[0.3, -1.0], [2.0, 0.1]])

    def log_prob(loc, scale):
        return Normal(loc, scale).log_prob(x)

    params = (f64([0.1, -0.5], True), f64([0.7, 1.3], True))
    assert gradcheck(log_prob, params)
    assert gradgradcheck(log_prob, params)
    assert gradcheck(lambda s: Normal(0.0, s).entropy(), (f64([0.7, 1.3], True),))


def test_compiled_draws_are_fresh_at_each_replay():
    loc, scale = nx.zeros(16), nx.ones(16)

    @nx.compile
    def draw(loc, scale):
        return Normal(loc, scale, validate_args=False).rsample() * 1.0

    samples = {draw(loc, scale).numpy().tobytes() for _ in range(4)}
    assert draw.stats["replays"] == 3 and len(samples) == 4


@pytest.mark.parametrize("loc, scale, message", [
    (0.0, 0.0, r"parameter scale \(shape \(\)\) must be positive, but has the values \[0.0\]"),
    (f64([0.0, 1.0]), f64([1.0, -2.0]), r"must be positive, but has the values \[-2.0\]"),
    (float("nan"), 1.0, "parameter loc .* must be a real number"),
])
def test_bad_parameters_are_refused(loc, scale, message):
    with pytest.raises(ValueError, match=message):
        Normal(loc, scale)
    Normal(loc, scale, validate_args=False)  # unchecked when asked


def test_values_are_checked_and_default_validation_can_be_switched_off():
    d = Normal(f64([0.0, 1.0]), 1.0)
    with pytest.raises(ValueError, match="does not broadcast with the batch shape"):
        d.log_prob(f64([1.0, 2.0, 3.0]))
    with pytest.raises(TypeError, match="value must be a Tensor"):
        d.log_prob(0.5)
    Distribution.set_default_validate_args(False)
    try:
        Normal(0.0, -1.0)
    finally:
        Distribution.set_default_validate_args(True)
    with pytest.raises(NotImplementedError, match="has no rsample"):
        Distribution().rsample()
