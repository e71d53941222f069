"""TransformerEncoderLayer and TransformerEncoder: the blocks in PyTorch's order (both norm_first values), both
layouts, gradients to second order, independent copies of the layer."""

import numpy as np
import pytest

import neurenix as nx
from neurenix import nn
from neurenix.func import functional_call
from neurenix.nn import functional as F
from neurenix.testing import gradcheck, gradgradcheck


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _by_hand(layer, x, mask, pad):
    """The layer's forward written out from its submodules (inputs in its own layout)."""
    def sa(h):
        return layer.self_attn(h, h, h, attn_mask=mask, key_padding_mask=pad)[0]

    def ff(h):
        return layer.linear2(layer.activation(layer.linear1(h)))

    if layer.norm_first:
        x = x + sa(layer.norm1(x))
        return x + ff(layer.norm2(x))
    x = layer.norm1(x + sa(x))
    return layer.norm2(x + ff(x))


@pytest.mark.parametrize("dtype", [nx.float32, nx.float64], ids=str)
@pytest.mark.parametrize("batch_first", [False, True], ids=["seq-first", "batch-first"])
@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
def test_blocks_in_pytorchs_order(norm_first, batch_first, dtype):
    layer = nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, activation="gelu", norm_first=norm_first,
                                       batch_first=batch_first, dtype=dtype)
    src = nx.tensor(_rand(*((2, 3, 4) if batch_first else (3, 2, 4))), dtype=dtype)  # S = 3, N = 2
    mask, pad = nx.tensor(np.triu(np.ones((3, 3), bool), 1)), nx.tensor([[False, False, True], [False, False, False]])
    got = layer(src, src_mask=mask, src_key_padding_mask=pad)
    want = _by_hand(layer, src, mask, pad)
    assert got.dtype == dtype and got.shape == src.shape
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6 if dtype == nx.float32 else 1e-13, atol=1e-6)


def test_layouts_agree():
    nx.manual_seed(0)
    a = nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0).double()
    b = nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, batch_first=True).double()
    b.load_state_dict(a.state_dict())
    x = nx.tensor(_rand(3, 2, 4))
    np.testing.assert_allclose(b(x.transpose(0, 1)).transpose(0, 1).numpy(), a(x).numpy(), rtol=1e-12)


@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
def test_gradients_to_second_order(norm_first):
    layer = nn.TransformerEncoderLayer(4, 2, 3, dropout=0.0, norm_first=norm_first, activation=F.gelu).double()
    names = [n for n, _ in layer.named_parameters()]
    pad = nx.tensor([[False, True], [False, False]])

    def fn(x, *ps):
        return functional_call(layer, dict(zip(names, ps)), x, src_key_padding_mask=pad)

    inputs = [nx.tensor(_rand(2, 2, 4), requires_grad=True)]
    inputs += [nx.tensor(_rand(*p.shape, seed=1 + i), requires_grad=True) for i, p in enumerate(layer.parameters())]
    assert gradcheck(fn, inputs) and gradgradcheck(fn, inputs)


def test_defaults_and_names_as_pytorchs():
    layer = nn.TransformerEncoderLayer(8, 2)
    assert layer.linear1.out_features == 2048 and layer.dropout.p == 0.1 and layer.norm1.eps == 1e-5
    assert layer.activation is F.relu and not layer.norm_first and not layer.self_attn.batch_first
    assert [n for n, _ in layer.named_children()] == ["self_attn", "linear1", "dropout", "linear2", "norm1", "norm2",
                                                       "dropout1", "dropout2"]
    assert all(b is None for b in (nn.TransformerEncoderLayer(8, 2, bias=False).norm1.bias,
                                   nn.TransformerEncoderLayer(8, 2, bias=False).linear1.bias))


def test_encoder_stacks_independent_copies_then_norm():
    layer = nn.TransformerEncoderLayer(4, 2, 6, dropout=0.0, batch_first=True).double()
    enc = nn.TransformerEncoder(layer, 3, norm=nn.LayerNorm(4).double())
    ws = [m.linear1.weight for m in enc.layers]
    assert len(ws) == 3 and len({id(w) for w in ws}) == 3 and ws[0] is not layer.linear1.weight
    np.testing.assert_array_equal(ws[0].numpy(), layer.linear1.weight.numpy())
    assert list(enc.state_dict())[:2] == ["layers.0.self_attn.in_proj_weight", "layers.0.self_attn.in_proj_bias"]
    with nx.no_grad():
        enc.layers[1].linear1.weight.add_(1.0)  # the copies are independent
    assert not np.array_equal(enc.layers[0].linear1.weight.numpy(), enc.layers[1].linear1.weight.numpy())
    x, pad = nx.tensor(_rand(2, 3, 4)), nx.tensor([[False, False, True], [False, False, False]])
    want = x
    for m in enc.layers:
        want = m(want, src_key_padding_mask=pad)
    np.testing.assert_allclose(enc(x, src_key_padding_mask=pad).numpy(), enc.norm(want).numpy(), rtol=1e-13)
    assert nn.TransformerEncoder(layer, 0)(x) is x
