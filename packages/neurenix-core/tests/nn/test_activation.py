"""SiLU, ELU, Softplus (and LeakyReLU, GELU's PyTorch defaults): values in both float dtypes against NumPy, gradients
to second order, no overflow at large inputs."""

import inspect

import numpy as np
import pytest

import neurenix as nx
from neurenix import nn
from neurenix.nn import functional as F
from neurenix.testing import gradcheck, gradgradcheck

X = np.array([-40.0, -3.0, -0.5, -1e-3, 0.0, 1e-3, 0.7, 2.5, 19.0, 21.0])


def _softplus(x, beta=1.0, threshold=20.0):
    return np.where(beta * x > threshold, x, np.log1p(np.exp(np.minimum(beta * x, threshold))) / beta)


LAYERS = {
    "SiLU": (nn.SiLU(), lambda x: x / (1 + np.exp(-x))),
    "ELU": (nn.ELU(), lambda x: np.where(x > 0, x, np.expm1(x))),
    "ELU-alpha": (nn.ELU(alpha=0.3), lambda x: np.where(x > 0, x, 0.3 * np.expm1(x))),
    "Softplus": (nn.Softplus(), _softplus),
    "Softplus-beta": (nn.Softplus(beta=2.0, threshold=5.0), lambda x: _softplus(x, 2.0, 5.0)),
}


@pytest.mark.parametrize("dtype", [nx.float32, nx.float64], ids=str)
@pytest.mark.parametrize("name", LAYERS)
def test_values(name, dtype):
    layer, oracle = LAYERS[name]
    got = layer(nx.tensor(X, dtype=dtype))
    assert got.dtype == dtype
    tol = 1e-6 if dtype == nx.float32 else 1e-15  # exp(x) - 1 and log(1 + e): absolute, not relative, accuracy
    np.testing.assert_allclose(got.numpy(), oracle(X), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", LAYERS)
def test_gradients_to_second_order(name):
    layer, _ = LAYERS[name]
    x = nx.tensor(np.random.default_rng(0).standard_normal((3, 4)) * 3, requires_grad=True)
    assert gradcheck(layer, [x]) and gradgradcheck(layer, [x])


@pytest.mark.parametrize("name", LAYERS)
def test_gradients_at_kinks_and_far_out_are_pytorchs(name):
    """At 0 ELU takes the exp branch's slope (alpha) and Softplus its sigmoid (1/2); far out no inf or NaN leaks
    in through the branch where does not take."""
    layer, _ = LAYERS[name]
    x = nx.tensor([-1000.0, 0.0, 1000.0], dtype=nx.float64, requires_grad=True)
    (g,) = nx.autograd.grad(layer(x).sum(), x)
    want = {"SiLU": [0.0, 0.5, 1.0], "ELU": [0.0, 1.0, 1.0], "ELU-alpha": [0.0, 0.3, 1.0],
            "Softplus": [0.0, 0.5, 1.0], "Softplus-beta": [0.0, 0.5, 1.0]}[name]
    np.testing.assert_allclose(g.numpy(), want, atol=1e-15)


def test_functional_forms_equal_the_layers():
    x = nx.tensor(X)
    for fn, layer in ((F.silu, nn.SiLU()), (lambda t: F.elu(t, 0.5), nn.ELU(0.5)),
                      (lambda t: F.softplus(t, 3.0, 4.0), nn.Softplus(3.0, 4.0))):
        np.testing.assert_array_equal(fn(x).numpy(), layer(x).numpy())


@pytest.mark.parametrize("cls, defaults", [
    (nn.LeakyReLU, {"negative_slope": 0.01, "inplace": False}), (nn.GELU, {"approximate": "none"}),
    (nn.ELU, {"alpha": 1.0, "inplace": False}), (nn.Softplus, {"beta": 1.0, "threshold": 20.0}),
    (nn.SiLU, {"inplace": False})], ids=lambda v: getattr(v, "__name__", ""))
def test_pytorchs_defaults(cls, defaults):
    params = inspect.signature(cls).parameters
    assert {n: p.default for n, p in params.items()} == defaults


def test_reprs():
    assert repr(nn.ELU(0.5)) == "ELU(alpha=0.5)" and repr(nn.SiLU()) == "SiLU()"
    assert repr(nn.Softplus()) == "Softplus(beta=1.0, threshold=20.0)"
    assert repr(nn.GELU("tanh")) == "GELU(approximate='tanh')"
    assert repr(nn.LeakyReLU()) == "LeakyReLU(negative_slope=0.01)"
