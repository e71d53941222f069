"""Embedding: rows looked up in both float dtypes, PyTorch's initialisation, padding_idx (a zero row that gets no
gradient), gradients to second order, from_pretrained."""

import numpy as np
import pytest

import neurenix as nx
from neurenix import nn
from neurenix.nn import functional as F
from neurenix.testing import gradcheck, gradgradcheck

IDX = np.array([[0, 3, 3], [1, 0, 4]])


@pytest.mark.parametrize("dtype", [nx.float32, nx.float64], ids=str)
def test_values_are_the_rows(dtype):
    emb = nn.Embedding(5, 3, dtype=dtype)
    out = emb(nx.tensor(IDX))
    assert out.shape == (2, 3, 3) and out.dtype == dtype
    np.testing.assert_array_equal(out.numpy(), emb.weight.numpy()[IDX])
    np.testing.assert_array_equal(emb(nx.tensor(2)).numpy(), emb.weight.numpy()[2])  # a 0-d index: one row


def test_initialisation_is_standard_normal_with_a_zero_padding_row():
    nx.manual_seed(0)
    w = nn.Embedding(2000, 10, padding_idx=-1).weight.numpy()
    assert not w[-1].any()
    assert abs(w[:-1].mean()) < 0.02 and abs(w[:-1].std() - 1) < 0.02


@pytest.mark.parametrize("padding_idx, row", [(None, None), (0, 0), (-1, 4)])
def test_gradients_add_up_per_row_and_skip_the_padding_row(padding_idx, row):
    emb = nn.Embedding(5, 2, padding_idx=padding_idx).double()
    assert emb.padding_idx == row
    g = np.random.default_rng(0).standard_normal((2, 3, 2))
    (emb(nx.tensor(IDX)) * nx.tensor(g)).sum().backward()
    want = np.zeros((5, 2))
    np.add.at(want, IDX, g)
    if row is not None:
        want[row] = 0.0
    np.testing.assert_allclose(emb.weight.grad.numpy(), want, rtol=1e-14)


@pytest.mark.parametrize("padding_idx", [None, 2])  # (row 2 is not read: its cut gradient is no derivative)
def test_gradients_to_second_order(padding_idx):
    w = nx.tensor(np.random.default_rng(1).standard_normal((5, 2)), requires_grad=True)
    idx = nx.tensor(IDX)

    def fn(weight):  # squared, so the second order is not zero
        return F.embedding(idx, weight, padding_idx) ** 2

    assert gradcheck(fn, [w]) and gradgradcheck(fn, [w])


def test_padding_row_gets_no_second_order_gradient_either():
    w = nx.tensor(np.random.default_rng(1).standard_normal((5, 2)), requires_grad=True)
    (g,) = nx.autograd.grad((F.embedding(nx.tensor(IDX), w, padding_idx=3) ** 3).sum(), w, create_graph=True)
    (h,) = nx.autograd.grad((g * g).sum(), w)
    assert not g.numpy()[3].any() and not h.numpy()[3].any() and h.numpy()[[0, 1, 4]].all()


def test_from_pretrained_shares_and_freezes():
    table = nx.tensor(np.arange(6.0).reshape(3, 2))
    emb = nn.Embedding.from_pretrained(table)
    assert not emb.weight.requires_grad and emb.num_embeddings == 3 and emb.embedding_dim == 2
    np.testing.assert_array_equal(emb(nx.tensor([2, 0])).numpy(), [[4.0, 5.0], [0.0, 1.0]])
    assert nn.Embedding.from_pretrained(table, freeze=False, padding_idx=1).weight.requires_grad
    assert nn.Embedding.from_pretrained(table, padding_idx=1).weight.numpy()[1].any()  # kept, as PyTorch


def test_names_and_repr():
    emb = nn.Embedding(5, 3, padding_idx=1)
    assert [n for n, _ in emb.named_parameters()] == ["weight"] and emb.weight.shape == (5, 3)
    assert repr(emb) == "Embedding(5, 3, padding_idx=1)" and repr(nn.Embedding(4, 2)) == "Embedding(4, 2)"


@pytest.mark.parametrize("option", [dict(scale_grad_by_freq=True), dict(sparse=True)])
def test_unsupported_options_raise(option):
    with pytest.raises(NotImplementedError, match=next(iter(option))):
        nn.Embedding(4, 2, **option)
    with pytest.raises(NotImplementedError, match=next(iter(option))):
        F.embedding(nx.tensor([0]), nx.zeros(4, 2), **option)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0])
def test_max_norm_rescales_the_rows_looked_up_in_place(norm_type):
    table = np.random.default_rng(0).standard_normal((6, 3)) * 2
    emb = nn.Embedding.from_pretrained(nx.tensor(table), freeze=False, max_norm=1.5, norm_type=norm_type)
    idx = np.array([[0, 2, 2], [5, 0, 1]])
    out = emb(nx.tensor(idx))
    norms = (np.abs(table) ** norm_type).sum(1) ** (1 / norm_type)
    hit = np.isin(np.arange(6), idx)
    want = np.where((hit & (norms > 1.5))[:, None], table * (1.5 / (norms + 1e-7))[:, None], table)
    np.testing.assert_allclose(emb.weight.numpy(), want, rtol=1e-12)  # rows 3 and 4 untouched
    np.testing.assert_allclose(out.detach().numpy(), want[idx], rtol=1e-12)
    (out * 2).sum().backward()  # the gradient flows to the weight as a lookup's
    assert emb.weight.grad.numpy()[2].tolist() == [4.0] * 3


def test_max_norm_refuses_computed_weights_and_bad_norms():
    w = nx.ones(4, 2, requires_grad=True) * 3
    with pytest.raises(RuntimeError, match="max_norm rescales rows of weight in place"):
        F.embedding(nx.tensor([0]), w, max_norm=1.0)
    with pytest.raises(ValueError, match="max_norm"):
        F.embedding(nx.tensor([0]), nx.ones(4, 2), max_norm=0.0)
    with pytest.raises(ValueError, match="norm_type"):
        F.embedding(nx.tensor([0]), nx.ones(4, 2), max_norm=1.0, norm_type=-1.0)
