"""Bernoulli: probs or logits, sample frequencies, log_prob / entropy against NumPy, gradients of log_prob
against finite differences, and argument checks."""

import numpy as np
import pytest

import neurenix as nx
from neurenix.distributions import Bernoulli
from neurenix.testing import gradcheck, gradgradcheck

P = np.array([0.1, 0.5, 0.85])


def f64(values, requires_grad=False):
    return nx.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


@pytest.mark.parametrize("kind", ["probs", "logits"])
def test_probs_and_logits_describe_the_same_distribution(kind):
    d = Bernoulli(**{kind: f64(P if kind == "probs" else np.log(P / (1 - P)))})
    assert d.batch_shape == (3,)
    np.testing.assert_allclose(d.probs.numpy(), P, rtol=1e-12)
    np.testing.assert_allclose(d.mean.numpy(), P, rtol=1e-12)
    np.testing.assert_allclose(d.variance.numpy(), P * (1 - P), rtol=1e-12)
    np.testing.assert_allclose(d.log_prob(f64([1.0, 0.0, 1.0])).numpy(), np.log([0.1, 0.5, 0.85]), rtol=1e-12)
    np.testing.assert_allclose(d.entropy().numpy(), -(P * np.log(P) + (1 - P) * np.log(1 - P)), rtol=1e-12)


def test_samples_follow_the_probabilities():
    nx.manual_seed(1)
    s = Bernoulli(f64(P)).sample((20000,))
    assert s.shape == (20000, 3) and s.dtype == nx.float64 and set(np.unique(s.numpy())) <= {0.0, 1.0}
    np.testing.assert_allclose(s.numpy().mean(0), P, atol=0.015)


def test_a_number_parameter():
    d = Bernoulli(0.25)
    assert d.batch_shape == () and d.sample((4,)).shape == (4,)
    np.testing.assert_allclose(d.log_prob(nx.tensor(0.0)).item(), np.log(0.75), rtol=1e-6)


@pytest.mark.parametrize("kind", ["probs", "logits"])
def test_log_prob_and_entropy_gradients_against_finite_differences(kind):
    value = f64([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    param = f64([0.2, 0.6, 0.9] if kind == "probs" else [-1.2, 0.4, 2.0], True)

    def log_prob(p):
        return Bernoulli(**{kind: p}).log_prob(value)

    assert gradcheck(log_prob, (param,))
    assert gradgradcheck(log_prob, (param,))
    assert gradcheck(lambda p: Bernoulli(**{kind: p}).entropy(), (param,))


@pytest.mark.parametrize("kwargs, message", [({"probs": f64([0.5, 1.5])}, r"must be in \[0, 1\].*\[1.5\]"),
                                             ({"logits": f64([float("nan")])}, "must be real numbers"),
                                             ({}, "give either probs or logits")])
def test_bad_parameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Bernoulli(**kwargs)


def test_values_outside_the_support_are_refused():
    with pytest.raises(ValueError, match=r"support of Bernoulli \(0 or 1\), but has \[0.5\]"):
        Bernoulli(f64(P)).log_prob(f64([1.0, 0.5, 0.0]))
