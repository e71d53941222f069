"""Categorical: probs or logits, sample frequencies, log_prob / entropy against NumPy, gradients of log_prob
against finite differences, and argument checks."""

import numpy as np
import pytest

import neurenix as nx
from neurenix.distributions import Categorical
from neurenix.testing import gradcheck, gradgradcheck

PROBS = np.array([[0.1, 0.6, 0.3], [0.5, 0.0, 0.5]])


def f64(values, requires_grad=False):
    return nx.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


@pytest.mark.parametrize("kind", ["probs", "logits"])
def test_probs_and_logits_describe_the_same_distribution(kind):
    given = f64(PROBS * 7) if kind == "probs" else f64(np.log(PROBS + 1e-300) + 2.0)
    d = Categorical(**{kind: given})
    assert d.batch_shape == (2,) and d.event_shape == ()
    np.testing.assert_allclose(d.probs.numpy(), PROBS, atol=1e-15)
    value = nx.tensor([1, 2])
    np.testing.assert_allclose(d.log_prob(value).numpy(), np.log([0.6, 0.5]), rtol=1e-12)
    plogp = np.where(PROBS > 0, PROBS * np.log(np.where(PROBS > 0, PROBS, 1)), 0)
    np.testing.assert_allclose(d.entropy().numpy(), -plogp.sum(1), rtol=1e-12)
    assert d.mode.tolist() == [1, 0] and np.isnan(d.mean.numpy()).all() and d.variance.shape == (2,)


def test_samples_follow_the_probabilities():
    nx.manual_seed(0)
    s = Categorical(f64(PROBS)).sample((20000,))
    assert s.shape == (20000, 2) and s.dtype == nx.int64
    for row in range(2):
        freq = np.bincount(s.numpy()[:, row], minlength=3) / 20000
        np.testing.assert_allclose(freq, PROBS[row], atol=0.015)
    assert (s.numpy()[:, 1] != 1).all()  # probability 0 is never drawn


def test_log_prob_broadcasts_values_over_the_batch():
    d = Categorical(logits=f64(np.zeros((2, 4))))
    lp = d.log_prob(nx.tensor([[0], [3], [2]]))
    assert lp.shape == (3, 2)
    np.testing.assert_allclose(lp.numpy(), np.full((3, 2), -np.log(4)), rtol=1e-14)


@pytest.mark.parametrize("kind", ["probs", "logits"])
def test_log_prob_and_entropy_gradients_against_finite_differences(kind):
    value = nx.tensor([[2, 0], [1, 1]])
    param = f64([[0.2, 0.5, 0.3], [0.4, 0.4, 0.2]] if kind == "probs" else [[0.1, -1.0, 0.7], [2.0, 0.3, -0.4]], True)

    def log_prob(p):
        return Categorical(**{kind: p}).log_prob(value)

    assert gradcheck(log_prob, (param,))
    assert gradgradcheck(log_prob, (param,))
    assert gradcheck(lambda p: Categorical(**{kind: p}).entropy(), (param,))


@pytest.mark.parametrize("kwargs, error, message", [
    ({}, ValueError, "give either probs or logits"),
    ({"probs": f64([0.5]), "logits": f64([0.0])}, ValueError, "give either probs or logits"),
    ({"probs": [0.5, 0.5]}, TypeError, "probs must be a Tensor"),
    ({"probs": nx.tensor([1, 2])}, TypeError, "probs must be a float tensor"),
    ({"probs": f64(0.5)}, ValueError, "at least one dimension"),
    ({"probs": f64([0.5, -0.1])}, ValueError, r"parameter probs .* must be finite and non-negative.*\[-0.1\]"),
    ({"probs": f64([[0.0, 0.0]])}, ValueError, "not all zero"),
    ({"logits": f64([0.0, float("nan")])}, ValueError, "parameter logits .* must be real numbers"),
])
def test_bad_parameters_are_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        Categorical(**kwargs)


@pytest.mark.parametrize("value", [nx.tensor([3]), nx.tensor([-1]), f64([0.5])])
def test_values_outside_the_support_are_refused(value):
    with pytest.raises(ValueError, match=r"support of Categorical \(integers 0 .. K-1\)"):
        Categorical(f64([0.2, 0.3, 0.5])).log_prob(value)
