"""MaxPool1d, AvgPool1d and AdaptiveAvgPool2d: values in both float dtypes against NumPy, gradients to second order."""

import numpy as np
import pytest

import neurenix as nx
from neurenix import nn
from neurenix.testing import gradcheck, gradgradcheck


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _np_pool1d(x, k, stride, padding, dilation, reduce, pad_value):
    xp = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(padding, padding)], constant_values=pad_value)
    n_out = (x.shape[-1] + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    return np.stack([reduce(xp[..., i * stride:i * stride + dilation * (k - 1) + 1:dilation], axis=-1)
                     for i in range(n_out)], axis=-1)


POOLS = {
    "max": (nn.MaxPool1d(2), lambda x: _np_pool1d(x, 2, 2, 0, 1, np.max, -np.inf)),
    "max-padded": (nn.MaxPool1d(3, stride=2, padding=1), lambda x: _np_pool1d(x, 3, 2, 1, 1, np.max, -np.inf)),
    "max-dilated": (nn.MaxPool1d((2,), stride=1, dilation=2), lambda x: _np_pool1d(x, 2, 1, 0, 2, np.max, -np.inf)),
    "avg": (nn.AvgPool1d(3), lambda x: _np_pool1d(x, 3, 3, 0, 1, np.mean, 0.0)),
    "avg-padded": (nn.AvgPool1d(3, stride=1, padding=1), lambda x: _np_pool1d(x, 3, 1, 1, 1, np.mean, 0.0)),
}


@pytest.mark.parametrize("dtype", [nx.float32, nx.float64], ids=str)
@pytest.mark.parametrize("shape", [(2, 3, 9), (3, 8)], ids=["batched", "unbatched"])
@pytest.mark.parametrize("name", POOLS)
def test_1d_values(name, shape, dtype):
    pool, oracle = POOLS[name]
    x = _rand(*shape)
    got = pool(nx.tensor(x, dtype=dtype))
    assert got.dtype == dtype
    np.testing.assert_allclose(got.numpy(), oracle(x), rtol=1e-6 if dtype == nx.float32 else 1e-14, atol=1e-6)


def _np_adaptive(x, oh, ow):
    h, w = x.shape[-2:]
    rows = [(i * h // oh, -(-(i + 1) * h // oh)) for i in range(oh)]
    cols = [(j * w // ow, -(-(j + 1) * w // ow)) for j in range(ow)]
    return np.stack([np.stack([x[..., a:b, c:d].mean(axis=(-2, -1)) for c, d in cols], -1) for a, b in rows], -2)


@pytest.mark.parametrize("dtype", [nx.float32, nx.float64], ids=str)
@pytest.mark.parametrize("size, shape, out", [((2, 3), (2, 3, 7, 5), (2, 3)), (1, (3, 4, 4), (1, 1)),
                                              ((None, 2), (1, 2, 3, 5), (3, 2)), (4, (1, 1, 3, 3), (4, 4))])
def test_adaptive_avg_pool2d_values(size, shape, out, dtype):
    x = _rand(*shape)
    got = nn.AdaptiveAvgPool2d(size)(nx.tensor(x, dtype=dtype))
    assert got.shape == shape[:-2] + out and got.dtype == dtype
    np.testing.assert_allclose(got.numpy(), _np_adaptive(x, *out), rtol=1e-5 if dtype == nx.float32 else 1e-14,
                               atol=1e-6)


@pytest.mark.parametrize("pool", [*(p for p, _ in POOLS.values()), nn.AdaptiveAvgPool2d((2, 3))],
                         ids=[*POOLS, "adaptive"])
def test_gradients_to_second_order(pool):
    shape = (1, 2, 4, 5) if isinstance(pool, nn.AdaptiveAvgPool2d) else (2, 7)

    def fn(x):  # squared: the second order of a pool alone is zero
        return pool(x) ** 2

    x = nx.tensor(_rand(*shape, seed=3), requires_grad=True)
    assert gradcheck(fn, [x]) and gradgradcheck(fn, [x])


def test_unsupported_options_raise():
    with pytest.raises(NotImplementedError, match="return_indices"):
        nn.MaxPool1d(2, return_indices=True)
    with pytest.raises(NotImplementedError, match="ceil_mode"):
        nn.MaxPool1d(2, ceil_mode=True)(nx.zeros(1, 1, 5))
    with pytest.raises(NotImplementedError, match="count_include_pad"):
        nn.AvgPool1d(2, padding=1, count_include_pad=False)(nx.zeros(1, 1, 5))
