"""LayerNorm and GroupNorm: values in both float dtypes against NumPy, parameters as PyTorch's, gradients to second
order with respect to the input and the affine parameters."""

import numpy as np
import pytest

import neurenix as nx
from neurenix import nn
from neurenix.func import functional_call
from neurenix.nn import functional as F
from neurenix.testing import gradcheck, gradgradcheck


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _np_normalize(x, axes, eps):
    mu = x.mean(axis=axes, keepdims=True)
    return (x - mu) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)


def _np_group_norm(x, groups, w, b, eps):
    n, c = x.shape[:2]
    y = _np_normalize(x.reshape(n, groups, -1), (2,), eps).reshape(x.shape)
    shape = (c,) + (1,) * (x.ndim - 2)
    return y * w.reshape(shape) + b.reshape(shape)


def _randomise(module, seed=1):
    """Affine parameters away from their ones and zeros, so that a mistake in them shows."""
    for p in module.parameters():
        p.data = nx.tensor(_rand(*p.shape, seed=seed), dtype=p.dtype)
    return module


@pytest.mark.parametrize("dtype", [nx.float32, nx.float64], ids=str)
@pytest.mark.parametrize("shape, normalized", [((3, 5), 5), ((2, 3, 4, 5), (4, 5)), ((4,), [4])])
def test_layer_norm_values(shape, normalized, dtype):
    ln = _randomise(nn.LayerNorm(normalized, eps=1e-3, dtype=dtype))
    x = _rand(*shape)
    k = 1 if isinstance(normalized, int) else len(normalized)
    want = _np_normalize(x, tuple(range(x.ndim - k, x.ndim)), 1e-3) * ln.weight.numpy() + ln.bias.numpy()
    got = ln(nx.tensor(x, dtype=dtype))
    assert got.dtype == dtype
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5 if dtype == nx.float32 else 1e-12, atol=1e-5)


@pytest.mark.parametrize("dtype", [nx.float32, nx.float64], ids=str)
@pytest.mark.parametrize("shape, groups", [((2, 6, 3, 3), 3), ((3, 4, 5), 4), ((2, 4), 1), ((2, 6, 2, 2, 2), 2)])
def test_group_norm_values(shape, groups, dtype):
    gn = _randomise(nn.GroupNorm(groups, shape[1], dtype=dtype))
    x = _rand(*shape)
    got = gn(nx.tensor(x, dtype=dtype))
    want = _np_group_norm(x, groups, gn.weight.numpy(), gn.bias.numpy(), 1e-5)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5 if dtype == nx.float32 else 1e-12, atol=1e-5)


def test_parameters_as_pytorchs():
    ln = nn.LayerNorm((2, 3))
    assert ln.normalized_shape == (2, 3) and ln.eps == 1e-5 and ln.elementwise_affine
    assert [n for n, _ in ln.named_parameters()] == ["weight", "bias"]
    assert ln.weight.shape == (2, 3) and (ln.weight.numpy() == 1).all() and (ln.bias.numpy() == 0).all()
    assert [n for n, _ in nn.LayerNorm(3, bias=False).named_parameters()] == ["weight"]
    assert list(nn.LayerNorm(3, elementwise_affine=False).parameters()) == []
    gn = nn.GroupNorm(2, 4)
    assert gn.weight.shape == gn.bias.shape == (4,) and list(nn.GroupNorm(2, 4, affine=False).parameters()) == []
    assert repr(gn) == "GroupNorm(2, 4, eps=1e-05, affine=True)"
    assert repr(ln) == "LayerNorm((2, 3), eps=1e-05, elementwise_affine=True)"


def _check_module(module, x):
    module.double()
    names = [n for n, _ in module.named_parameters()]
    params = [p.detach().requires_grad_() for p in module.parameters()]

    def fn(inp, *ps):
        return functional_call(module, dict(zip(names, ps)), inp)

    inputs = [nx.tensor(x, requires_grad=True), *params]
    assert gradcheck(fn, inputs) and gradgradcheck(fn, inputs)


@pytest.mark.parametrize("module, shape", [
    (lambda: nn.LayerNorm(4), (3, 4)), (lambda: nn.LayerNorm((2, 3), bias=False), (2, 2, 3)),
    (lambda: nn.LayerNorm(3, elementwise_affine=False), (2, 3)), (lambda: nn.GroupNorm(2, 4), (2, 4, 3)),
    (lambda: nn.GroupNorm(1, 2, affine=False), (2, 2, 2, 2))],
    ids=["ln", "ln-2d-no-bias", "ln-plain", "gn", "gn-plain"])
def test_gradients_to_second_order(module, shape):
    _check_module(_randomise(module()), _rand(*shape, seed=2))


def test_functional_forms():
    x = nx.tensor(_rand(2, 6, 3))
    w, b = nx.tensor(_rand(6, seed=3)), nx.tensor(_rand(6, seed=4))
    want = _np_group_norm(x.numpy(), 3, w.numpy(), b.numpy(), 1e-2)
    np.testing.assert_allclose(F.group_norm(x, 3, w, b, eps=1e-2).numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(F.layer_norm(x, (6, 3)).numpy(), _np_normalize(x.numpy(), (1, 2), 1e-5), rtol=1e-12)
