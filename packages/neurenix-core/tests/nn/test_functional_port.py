"""nn.functional additions for PyTorch ports: values against NumPy, gradients in float64."""

import math

import numpy as np
import pytest

import neurenix as nx
from neurenix import nn
from neurenix.nn import functional as F
from neurenix.testing import gradcheck, gradgradcheck


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _t(a, requires_grad=False):
    return nx.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def _grads(fn, *arrays):
    inputs = [_t(a, True) for a in arrays]
    assert gradcheck(fn, inputs) and gradgradcheck(fn, inputs)


def test_gelu_exact_and_tanh_and_leaky_relu():
    a = _rand(3, 4)
    exact = 0.5 * a * (1 + np.vectorize(math.erf)(a / math.sqrt(2)))
    np.testing.assert_allclose(F.gelu(_t(a)).numpy(), exact, atol=3e-7)
    approx = 0.5 * a * (1 + np.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * a ** 3)))
    np.testing.assert_allclose(nn.GELU("tanh")(_t(a)).numpy(), approx)
    np.testing.assert_allclose(nn.LeakyReLU(0.2)(_t(a)).numpy(), np.where(a > 0, a, 0.2 * a))
    for fn in (F.gelu, lambda x: F.gelu(x, approximate="tanh"), F.leaky_relu):
        _grads(fn, a)


def test_normalize_cosine_similarity_pairwise_distance():
    a, b = _rand(3, 4), _rand(3, 4, seed=1)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    np.testing.assert_allclose(F.normalize(_t(a)).numpy(), a / na[:, None])
    np.testing.assert_allclose(F.cosine_similarity(_t(a), _t(b)).numpy(), (a * b).sum(1) / (na * nb))
    np.testing.assert_allclose(F.pairwise_distance(_t(a), _t(b)).numpy(), np.linalg.norm(a - b + 1e-6, axis=1))
    _grads(lambda x, y: F.cosine_similarity(x, y, dim=1) + F.pairwise_distance(x, y), a, b)
    _grads(lambda x: F.normalize(x, dim=0), a)


def test_interpolate_matches_torch_conventions():
    x = _t(np.array([0.0, 1.0]).reshape(1, 1, 1, 2))
    up = F.interpolate(x, size=(1, 4), mode="bilinear", align_corners=False).numpy().ravel()
    np.testing.assert_allclose(up, [0, 0.25, 0.75, 1])
    up = F.interpolate(x, size=(1, 4), mode="bilinear", align_corners=True).numpy().ravel()
    np.testing.assert_allclose(up, [0, 1 / 3, 2 / 3, 1])
    a = _rand(1, 2, 3, 3)
    np.testing.assert_array_equal(F.interpolate(_t(a), scale_factor=2).numpy(), a.repeat(2, 2).repeat(2, 3))
    np.testing.assert_array_equal(F.interpolate(_t(a), size=2).numpy(), a[:, :, [0, 1]][:, :, :, [0, 1]])
    _grads(lambda t: F.interpolate(t, size=(4, 5), mode="bilinear"), a)
    _grads(lambda t: F.interpolate(t, scale_factor=2), a)


@pytest.mark.parametrize("size", [1, 2, (3, 2), (None, 1)])
def test_adaptive_avg_pool2d(size):
    a = _rand(2, 1, 5, 4)
    oh, ow = (size, size) if isinstance(size, int) else (size[0] or 5, size[1])
    ref = np.zeros((2, 1, oh, ow))
    for i in range(oh):
        for j in range(ow):
            h0, h1 = i * 5 // oh, -(-(i + 1) * 5 // oh)
            w0, w1 = j * 4 // ow, -(-(j + 1) * 4 // ow)
            ref[:, :, i, j] = a[:, :, h0:h1, w0:w1].mean((2, 3))
    np.testing.assert_allclose(F.adaptive_avg_pool2d(_t(a), size).numpy(), ref)
    _grads(lambda t: F.adaptive_avg_pool2d(t, size), a[:1])


def test_cross_entropy_weight_and_ignore_index():
    x, y, w = _rand(5, 3), np.array([0, 2, -100, 1, 2]), np.array([0.5, 2.0, 1.0])
    logp = x - np.log(np.exp(x).sum(1, keepdims=True))
    keep = y != -100
    picked = -logp[keep, y[keep]] * w[y[keep]]
    out = F.cross_entropy(_t(x), nx.tensor(y), weight=_t(w))
    np.testing.assert_allclose(out.item(), picked.sum() / w[y[keep]].sum())
    np.testing.assert_allclose(F.cross_entropy(_t(x), nx.tensor(y), reduction="sum").item(),
                               -logp[keep, y[keep]].sum())
    loss = nn.CrossEntropyLoss(weight=_t(w), ignore_index=2)
    keep = (y != 2) & (y != -100)
    y2 = np.where(y == -100, 1, y)
    keep = y2 != 2
    np.testing.assert_allclose(loss(_t(x), nx.tensor(y2)).item(),
                               (-logp[keep, y2[keep]] * w[y2[keep]]).sum() / w[y2[keep]].sum())
    assert "weight" in dict(loss.named_buffers())
    _grads(lambda t: F.cross_entropy(t, nx.tensor(y), weight=_t(w), label_smoothing=0.1), x)
