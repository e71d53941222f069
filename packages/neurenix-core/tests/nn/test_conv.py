"""Conv1d: values in both float dtypes against a NumPy loop, PyTorch's parameters and initialisation, gradients to
second order, unbatched inputs."""

import math

import numpy as np
import pytest

import neurenix as nx
from neurenix import nn
from neurenix.func import functional_call
from neurenix.testing import gradcheck, gradgradcheck


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _np_conv1d(x, w, b, stride, padding, dilation, groups):
    n, _, length = x.shape
    o, cg, k = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding)))
    out_len = (length + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    out = np.zeros((n, o, out_len))
    for oc in range(o):
        g = oc // (o // groups)
        for i in range(out_len):
            window = xp[:, g * cg:(g + 1) * cg, i * stride:i * stride + dilation * (k - 1) + 1:dilation]
            out[:, oc, i] = (window * w[oc]).sum(axis=(1, 2))
    return out if b is None else out + b.reshape(1, o, 1)


CONFIGS = {
    "plain": dict(in_channels=2, out_channels=3, kernel_size=3),
    "stride-padding": dict(in_channels=2, out_channels=2, kernel_size=2, stride=2, padding=1),
    "dilation": dict(in_channels=1, out_channels=2, kernel_size=2, dilation=3),
    "groups": dict(in_channels=4, out_channels=6, kernel_size=(3,), groups=2, padding=(2,)),
    "no-bias": dict(in_channels=2, out_channels=3, kernel_size=1, bias=False),
}


@pytest.mark.parametrize("dtype", [nx.float32, nx.float64], ids=str)
@pytest.mark.parametrize("name", CONFIGS)
def test_values(name, dtype):
    cfg = CONFIGS[name]
    conv = nn.Conv1d(**cfg, dtype=dtype)
    x = _rand(2, cfg["in_channels"], 9)
    w, b = conv.weight.numpy().astype(np.float64), None if conv.bias is None else conv.bias.numpy().astype(float)
    want = _np_conv1d(x, w, b, conv.stride[0], conv.padding[0], conv.dilation[0], conv.groups)
    got = conv(nx.tensor(x, dtype=dtype))
    assert got.dtype == dtype and got.shape == want.shape
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5 if dtype == nx.float32 else 1e-12, atol=1e-5)
    unbatched = conv(nx.tensor(x[0], dtype=dtype))  # (C, L)
    np.testing.assert_allclose(unbatched.numpy(), got.numpy()[0], rtol=1e-5 if dtype == nx.float32 else 1e-12)


@pytest.mark.parametrize("name", ["stride-padding", "groups", "no-bias"])
def test_gradients_to_second_order(name):
    conv = nn.Conv1d(**CONFIGS[name]).double()
    names = [n for n, _ in conv.named_parameters()]

    def fn(x, *ps):  # squared: the second order of a convolution alone is zero
        return functional_call(conv, dict(zip(names, ps)), x) ** 2

    inputs = [nx.tensor(_rand(1, conv.in_channels, 6), requires_grad=True)] + \
        [p.detach().requires_grad_() for p in conv.parameters()]
    assert gradcheck(fn, inputs) and gradgradcheck(fn, inputs)


def test_parameters_and_initialisation_as_pytorchs():
    nx.manual_seed(0)
    conv = nn.Conv1d(8, 6, 5, groups=2)
    assert conv.weight.shape == (6, 4, 5) and conv.bias.shape == (6,)
    assert conv.kernel_size == (5,) and conv.stride == (1,) and conv.padding == (0,) and conv.dilation == (1,)
    bound = 1 / math.sqrt(4 * 5)  # kaiming_uniform_(a=sqrt(5)) and the bias: both 1/sqrt(fan_in)
    for p in (conv.weight, conv.bias):
        assert bound * 0.7 < np.abs(p.numpy()).max() <= bound
    assert repr(conv) == "Conv1d(8, 6, kernel_size=(5,), stride=(1,), groups=2)"
