"""neurenix.distributions agree with torch.distributions: log_prob, entropy, moments and shapes (float64), and
the gradients of log_prob with respect to the parameters; bad parameters are refused by both."""

from __future__ import annotations

import numpy as np
import pytest

import neurenix as nx
from neurenix import distributions as nd

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(3, 4))
PROBS = RNG.uniform(0.05, 1.0, size=(3, 4))

# name -> (constructor arguments as NumPy arrays, values to score)
CASES = {
    "Normal": ({"loc": RNG.normal(size=(3,)), "scale": RNG.uniform(0.3, 2.0, size=(3,))}, RNG.normal(size=(2, 3))),
    "Normal-broadcast": ({"loc": RNG.normal(size=(2, 1)), "scale": RNG.uniform(0.3, 2.0, size=(3,))},
                         RNG.normal(size=(2, 3))),
    "Categorical-probs": ({"probs": PROBS}, np.array([[0, 3, 1], [2, 2, 0]])),
    "Categorical-logits": ({"logits": LOGITS}, np.array([[1, 0, 3]])),
    "Bernoulli-probs": ({"probs": RNG.uniform(0.05, 0.95, size=(4,))}, np.array([[1.0, 0.0, 0.0, 1.0]])),
    "Bernoulli-logits": ({"logits": RNG.normal(size=(2, 4))}, np.array([1.0, 1.0, 0.0, 0.0])),
}


def _make(lib, case, requires_grad=False):
    params, value = CASES[case]
    dist = getattr(nx.distributions if lib is nx else lib.distributions, case.split("-")[0])
    tensors = {k: lib.tensor(v, dtype=lib.float64, requires_grad=requires_grad) for k, v in params.items()}
    return dist(**tensors), tensors, lib.tensor(value, dtype=lib.float64 if value.dtype.kind == "f" else lib.int64)


@pytest.mark.parametrize("case", CASES)
def test_log_prob_entropy_and_moments_match_torch(torch, case):
    ours, _, our_value = _make(nx, case)
    theirs, _, their_value = _make(torch, case)
    assert tuple(ours.batch_shape) == tuple(theirs.batch_shape) and tuple(ours.event_shape) == ()
    np.testing.assert_allclose(ours.log_prob(our_value).numpy(), theirs.log_prob(their_value).numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.entropy().numpy(), theirs.entropy().numpy(), rtol=1e-12)
    for moment in ("mean", "variance", "stddev"):
        np.testing.assert_allclose(getattr(ours, moment).numpy(), getattr(theirs, moment).numpy(), rtol=1e-12)
    for n in ((), (5,), (2, 3)):
        assert ours.sample(n).shape == tuple(theirs.sample(n).shape)
        assert str(ours.sample(n).dtype).rpartition(".")[2] == str(theirs.sample(n).dtype).rpartition(".")[2]


@pytest.mark.parametrize("case", CASES)
def test_log_prob_gradients_match_torch(torch, case):
    ours, our_params, our_value = _make(nx, case, requires_grad=True)
    theirs, their_params, their_value = _make(torch, case, requires_grad=True)
    our_grads = nx.autograd.grad((ours.log_prob(our_value) * 1.5).sum() + ours.entropy().sum(),
                                 list(our_params.values()))
    their_grads = torch.autograd.grad((theirs.log_prob(their_value) * 1.5).sum() + theirs.entropy().sum(),
                                      list(their_params.values()))
    for a, e in zip(our_grads, their_grads):
        np.testing.assert_allclose(a.numpy(), e.numpy(), rtol=1e-10, atol=1e-12)


def test_normal_rsample_gradients_match_torch_given_the_same_noise(torch):
    loc, scale = RNG.normal(size=(3,)), RNG.uniform(0.5, 2.0, size=(3,))
    nx.manual_seed(0)
    nl, ns = nx.tensor(loc, requires_grad=True), nx.tensor(scale, requires_grad=True)
    draw = nd.Normal(nl, ns).rsample((4,))
    nx.manual_seed(0)
    eps = nx.randn(4, 3, dtype=nx.float64).numpy()
    tl, ts = torch.tensor(loc, requires_grad=True), torch.tensor(scale, requires_grad=True)
    expected = tl + ts * torch.tensor(eps)  # torch's rsample, with neurenix's noise
    np.testing.assert_allclose(draw.detach().numpy(), expected.detach().numpy(), rtol=1e-14)
    ours, theirs = nx.autograd.grad((draw ** 2).sum(), [nl, ns]), torch.autograd.grad((expected ** 2).sum(), [tl, ts])
    for a, e in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), e.numpy(), rtol=1e-12)


@pytest.mark.parametrize("name, kwargs", [
    ("Normal", {"loc": [0.0], "scale": [-1.0]}),
    ("Normal", {"loc": [0.0], "scale": [0.0]}),
    ("Categorical", {"probs": [0.5, -0.5]}),
    ("Bernoulli", {"probs": [1.5]}),
    ("Bernoulli", {"logits": [float("nan")]}),
])
def test_both_refuse_bad_parameters(torch, name, kwargs):
    with pytest.raises(ValueError):
        getattr(torch.distributions, name)(**{k: torch.tensor(v) for k, v in kwargs.items()}, validate_args=True)
    with pytest.raises(ValueError):
        getattr(nd, name)(**{k: nx.tensor(v) for k, v in kwargs.items()})
