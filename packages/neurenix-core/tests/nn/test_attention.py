"""MultiheadAttention: values in both float dtypes against a NumPy implementation (masks of both kinds, both
layouts, unbatched, kdim/vdim, bias_k/v, zero attention), gradients to second order, dropout, PyTorch's parameters."""

import numpy as np
import pytest

import neurenix as nx
from neurenix import nn
from neurenix.func import functional_call
from neurenix.testing import gradcheck, gradgradcheck


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _np_mha(p, heads, q, k, v, key_padding_mask=None, attn_mask=None, bias_kv=False, zero_attn=False):
    """Batch-first (N, L, E) attention with the module's parameters ``p`` (NumPy arrays by name)."""
    e = q.shape[-1]
    if "in_proj_weight" in p:
        wq, wk, wv = np.split(p["in_proj_weight"], 3)
    else:
        wq, wk, wv = p["q_proj_weight"], p["k_proj_weight"], p["v_proj_weight"]
    bq, bk, bv = np.split(p["in_proj_bias"], 3) if "in_proj_bias" in p else (0, 0, 0)
    q, k, v = q @ wq.T + bq, k @ wk.T + bk, v @ wv.T + bv
    n, s = k.shape[:2]
    mask = np.zeros((n, 1, q.shape[1], s))
    if key_padding_mask is not None:
        mask = mask + np.where(key_padding_mask, -np.inf, 0)[:, None, None] if key_padding_mask.dtype == bool \
            else mask + key_padding_mask[:, None, None]
    if attn_mask is not None:
        m = np.where(attn_mask, -np.inf, 0) if attn_mask.dtype == bool else attn_mask
        mask = mask + (m.reshape(n, heads, *m.shape[1:]) if m.ndim == 3 else m)
    if bias_kv:
        k = np.concatenate([k, np.broadcast_to(p["bias_k"], (n, 1, e))], 1)
        v = np.concatenate([v, np.broadcast_to(p["bias_v"], (n, 1, e))], 1)
    d = e // heads
    split = lambda t: t.reshape(n, t.shape[1], heads, d).transpose(0, 2, 1, 3)  # noqa: E731
    q, k, v = split(q), split(k), split(v)
    if zero_attn:
        k, v = (np.concatenate([t, np.zeros((n, heads, 1, d))], 2) for t in (k, v))
    extra = k.shape[2] - s
    mask = np.concatenate([np.broadcast_to(mask, (n, mask.shape[1], q.shape[2], s)),
                           np.zeros((n, mask.shape[1], q.shape[2], extra))], -1)
    w = _softmax(q @ k.transpose(0, 1, 3, 2) / np.sqrt(d) + mask)
    out = (w @ v).transpose(0, 2, 1, 3).reshape(n, -1, e) @ p["out_proj.weight"].T + p.get("out_proj.bias", 0)
    return out, w


def _params(module):
    return {n: p.numpy().astype(np.float64) for n, p in module.named_parameters()}


def _bool_mask(*shape, seed):
    m = np.random.default_rng(seed).random(shape) < 0.4
    m[..., 0] = False  # every query keeps a key
    return m


CASES = {
    "plain": (dict(), dict()),
    "bool-masks": (dict(), dict(key_padding_mask=_bool_mask(2, 5, seed=1), attn_mask=_bool_mask(3, 5, seed=2))),
    "float-masks": (dict(), dict(key_padding_mask=_rand(2, 5, seed=3), attn_mask=_rand(3, 5, seed=4))),
    "3d-mask": (dict(), dict(attn_mask=_bool_mask(4, 3, 5, seed=5))),
    "kdim-vdim": (dict(kdim=3, vdim=5), dict(key_padding_mask=_bool_mask(2, 5, seed=6))),
    "bias-kv-zero-attn": (dict(add_bias_kv=True, add_zero_attn=True), dict(key_padding_mask=_bool_mask(2, 5, seed=7))),
    "no-bias": (dict(bias=False), dict(attn_mask=_rand(3, 5, seed=8))),
}


@pytest.mark.parametrize("dtype", [nx.float32, nx.float64], ids=str)
@pytest.mark.parametrize("batch_first", [False, True], ids=["seq-first", "batch-first"])
@pytest.mark.parametrize("name", CASES)
def test_values(name, batch_first, dtype):
    options, masks = CASES[name]
    mha = nn.MultiheadAttention(4, 2, batch_first=batch_first, dtype=dtype, **options)
    q, k, v = _rand(2, 3, 4, seed=10), _rand(2, 5, mha.kdim, seed=11), _rand(2, 5, mha.vdim, seed=12)
    want, w = _np_mha(_params(mha), 2, q, k, v, **masks, bias_kv="add_bias_kv" in options,
                      zero_attn="add_zero_attn" in options)
    layout = (lambda a: a) if batch_first else (lambda a: a.swapaxes(0, 1))
    out, weights = mha(*(nx.tensor(layout(a), dtype=dtype) for a in (q, k, v)),
                       **{n: nx.tensor(m, dtype=dtype if m.dtype != bool else None) for n, m in masks.items()})
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == nx.float32 else dict(rtol=1e-12, atol=1e-12)
    assert out.dtype == dtype and weights.dtype == dtype
    np.testing.assert_allclose(out.numpy(), layout(want), **tol)
    np.testing.assert_allclose(weights.numpy(), w.mean(1), **tol)


def test_weights_per_head_none_and_unbatched():
    mha = nn.MultiheadAttention(4, 2).double()
    x = nx.tensor(_rand(3, 1, 4))
    out, w = mha(x, x, x, average_attn_weights=False)
    assert w.shape == (1, 2, 3, 3)
    np.testing.assert_allclose(w.numpy().sum(-1), 1.0, rtol=1e-12)
    out2, none = mha(x, x, x, need_weights=False)
    assert none is None
    np.testing.assert_allclose(out2.numpy(), out.numpy(), rtol=1e-12)
    single, w1 = mha(x[:, 0], x[:, 0], x[:, 0], attn_mask=nx.zeros(2, 3, 3, dtype=nx.bool), average_attn_weights=False)
    assert single.shape == (3, 4) and w1.shape == (2, 3, 3)
    np.testing.assert_allclose(single.numpy(), out.numpy()[:, 0], rtol=1e-12)
    np.testing.assert_allclose(w1.numpy(), w.numpy()[0], rtol=1e-12)


def test_masked_keys_get_no_weight_and_bool_is_minus_inf():
    mha = nn.MultiheadAttention(4, 1).double()
    x = nx.tensor(_rand(4, 2, 4))
    pad = np.array([[False, False, True, True], [False, True, False, False]])
    _, w = mha(x, x, x, key_padding_mask=nx.tensor(pad))
    assert not w.numpy()[np.broadcast_to(pad[:, None, :], w.shape)].any()
    _, w_float = mha(x, x, x, key_padding_mask=nx.tensor(np.where(pad, -np.inf, 0.0)))
    np.testing.assert_array_equal(w.numpy(), w_float.numpy())
    causal = np.triu(np.ones((4, 4), bool), 1)
    _, w = mha(x, x, x, attn_mask=nx.tensor(causal), is_causal=True)
    assert not w.numpy()[:, causal].any()


def test_a_fully_masked_query_gives_nan_as_pytorch():
    mha = nn.MultiheadAttention(4, 1).double()
    x = nx.tensor(_rand(2, 1, 4))
    with np.errstate(invalid="ignore"):  # -inf - -inf in a softmax composed of NumPy ops: NaN, as meant
        out, _ = mha(x, x, x, key_padding_mask=nx.tensor([[True, True]]))
    assert np.isnan(out.numpy()).all()


@pytest.mark.parametrize("options", [dict(), dict(kdim=3, vdim=2, add_bias_kv=True, add_zero_attn=True)],
                         ids=["packed", "separate"])
def test_gradients_to_second_order(options):
    mha = nn.MultiheadAttention(4, 2, **options).double()
    names = [n for n, _ in mha.named_parameters()]
    mask = nx.tensor(_bool_mask(2, 3, seed=20))

    def fn(q, k, v, *ps):
        return functional_call(mha, dict(zip(names, ps)), q, k, v, key_padding_mask=mask)[0]

    inputs = [nx.tensor(_rand(length, 2, n, seed=4 + i), requires_grad=True)  # query, key, value
              for i, (length, n) in enumerate(((2, 4), (3, mha.kdim), (3, mha.vdim)))]
    inputs += [nx.tensor(_rand(*p.shape, seed=7 + i), requires_grad=True) for i, p in enumerate(mha.parameters())]
    assert gradcheck(fn, inputs) and gradgradcheck(fn, inputs)


def test_dropout_on_the_weights_in_training_only():
    mha = nn.MultiheadAttention(4, 2, dropout=0.5).double()
    x = nx.tensor(_rand(5, 2, 4))
    nx.manual_seed(0)
    _, w_train = mha(x, x, x, average_attn_weights=False)
    kept = w_train.numpy() != 0
    assert 0.3 < kept.mean() < 0.7  # the returned weights are the dropped-out ones, as PyTorch's
    _, w_eval = mha.eval()(x, x, x, average_attn_weights=False)
    np.testing.assert_allclose(w_train.numpy()[kept], 2 * w_eval.numpy()[kept], rtol=1e-12)


def test_parameters_as_pytorchs():
    mha = nn.MultiheadAttention(6, 3)
    assert [n for n, _ in mha.named_parameters()] == ["in_proj_weight", "in_proj_bias", "out_proj.weight",
                                                      "out_proj.bias"]
    assert mha.in_proj_weight.shape == (18, 6) and mha.head_dim == 2 and mha.batch_first is False
    assert not mha.in_proj_bias.numpy().any() and not mha.out_proj.bias.numpy().any()
    sep = nn.MultiheadAttention(6, 3, kdim=2, vdim=4, bias=False, add_bias_kv=True)
    assert [(n, p.shape) for n, p in sep.named_parameters()] == [
        ("q_proj_weight", (6, 6)), ("k_proj_weight", (6, 2)), ("v_proj_weight", (6, 4)), ("bias_k", (1, 1, 6)),
        ("bias_v", (1, 1, 6)), ("out_proj.weight", (6, 6))]
    assert sep.in_proj_weight is None and sep.in_proj_bias is None
