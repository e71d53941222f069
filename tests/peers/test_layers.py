"""neurenix's layers give PyTorch's outputs and gradients (input and every parameter) in float64, with PyTorch's
weights copied in (so the state_dict keys, their order and shapes match PyTorch's too)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import neurenix as nx

RNG = np.random.default_rng(0)


def _x(*shape):
    return RNG.standard_normal(shape)


def _ints(high, *shape):
    return RNG.integers(0, high, shape)


def _mask(*shape, p=0.3):
    """A bool mask that leaves every row something to attend to (its first key)."""
    m = RNG.random(shape) < p
    m[..., 0] = False
    return m


def _float_mask(*shape):
    return np.where(_mask(*shape), -np.inf, 0.0) + 0.1 * RNG.standard_normal(shape)


def _call(*arg_names, **kwargs):
    """``module(inputs...)``, where ``arg_names`` names inputs passed by keyword (None: by position)."""
    def call(module, *xs):
        args = [x for x, n in zip(xs, arg_names) if n is None]
        return module(*args, **{n: x for x, n in zip(xs, arg_names) if n is not None}, **kwargs)
    return call


def _forward(module, *xs):
    return module(*xs)


def _seq(n, l, e):
    return _x(l, n, e)


CAUSAL = np.triu(np.full((4, 4), -np.inf), 1)

# (id, module factory over lib, input arrays, call, tolerance)
CASES = [
    ("SiLU", lambda nn: nn.SiLU(), [_x(3, 5)], _forward),
    ("ELU", lambda nn: nn.ELU(), [_x(3, 5)], _forward),
    ("ELU-alpha", lambda nn: nn.ELU(alpha=0.7), [_x(3, 5)], _forward),
    ("Softplus", lambda nn: nn.Softplus(), [np.array([-40.0, -30.0, -5.0, 0.0, 1e-3, 5.0, 19.0, 25.0])], _forward),
    ("Softplus-beta", lambda nn: nn.Softplus(beta=2.0, threshold=3.0), [_x(4, 5) * 2], _forward),
    ("LeakyReLU", lambda nn: nn.LeakyReLU(), [_x(3, 5)], _forward),
    ("GELU", lambda nn: nn.GELU(), [_x(3, 5)], _forward),
    ("GELU-tanh", lambda nn: nn.GELU(approximate="tanh"), [_x(3, 5)], _forward),
    ("LayerNorm", lambda nn: nn.LayerNorm(5), [_x(3, 4, 5)], _forward),
    ("LayerNorm-2d", lambda nn: nn.LayerNorm((4, 5), eps=1e-3), [_x(3, 4, 5)], _forward),
    ("LayerNorm-no-bias", lambda nn: nn.LayerNorm(5, bias=False), [_x(2, 5)], _forward),
    ("LayerNorm-no-affine", lambda nn: nn.LayerNorm(5, elementwise_affine=False), [_x(2, 5)], _forward),
    ("GroupNorm", lambda nn: nn.GroupNorm(2, 4), [_x(2, 4, 3, 3)], _forward),
    ("GroupNorm-1d", lambda nn: nn.GroupNorm(4, 4, eps=1e-3), [_x(3, 4, 5)], _forward),
    ("GroupNorm-no-affine", lambda nn: nn.GroupNorm(1, 4, affine=False), [_x(2, 4)], _forward),
    ("Embedding", lambda nn: nn.Embedding(10, 3), [_ints(10, 4, 5)], _forward),
    ("Embedding-padding", lambda nn: nn.Embedding(6, 3, padding_idx=0), [_ints(6, 4, 5)], _forward),
    ("Embedding-padding-neg", lambda nn: nn.Embedding(6, 3, padding_idx=-2), [_ints(6, 7)], _forward),
    ("Embedding-max-norm", lambda nn: nn.Embedding(6, 3, max_norm=1.2, norm_type=3.0), [_ints(6, 4, 5)], _forward),
    ("Conv1d", lambda nn: nn.Conv1d(2, 3, 3), [_x(2, 2, 9)], _forward),
    ("Conv1d-all", lambda nn: nn.Conv1d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2), [_x(2, 4, 11)],
     _forward),
    ("Conv1d-no-bias-unbatched", lambda nn: nn.Conv1d(2, 3, (2,), bias=False), [_x(2, 7)], _forward),
    ("ConvTranspose2d", lambda nn: nn.ConvTranspose2d(2, 3, 3), [_x(2, 2, 4, 5)], _forward),
    ("ConvTranspose2d-all", lambda nn: nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3), padding=1, output_padding=1,
                                                          groups=2, dilation=(1, 2)), [_x(2, 4, 4, 3)], _forward),
    ("ConvTranspose2d-output-size", lambda nn: nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1, bias=False),
     [_x(2, 4, 4)], lambda m, x: m(x, output_size=(8, 8))),
    ("ConvTranspose1d", lambda nn: nn.ConvTranspose1d(2, 4, 3, stride=2, padding=1, output_padding=1, groups=2),
     [_x(3, 2, 6)], _forward),
    ("MaxPool1d", lambda nn: nn.MaxPool1d(2), [_x(2, 3, 9)], _forward),
    ("MaxPool1d-all", lambda nn: nn.MaxPool1d(3, stride=2, padding=1, dilation=1), [_x(3, 10)], _forward),
    ("MaxPool1d-dilation", lambda nn: nn.MaxPool1d(2, stride=1, dilation=2), [_x(2, 3, 8)], _forward),
    ("AvgPool1d", lambda nn: nn.AvgPool1d(3, stride=1, padding=1), [_x(2, 3, 8)], _forward),
    ("AvgPool1d-default", lambda nn: nn.AvgPool1d(2), [_x(3, 9)], _forward),
    ("AdaptiveAvgPool2d", lambda nn: nn.AdaptiveAvgPool2d((2, 3)), [_x(2, 3, 7, 5)], _forward),
    ("AdaptiveAvgPool2d-1", lambda nn: nn.AdaptiveAvgPool2d(1), [_x(3, 5, 4)], _forward),
    ("AdaptiveAvgPool2d-None", lambda nn: nn.AdaptiveAvgPool2d((None, 2)), [_x(1, 2, 3, 5)], _forward),
    ("MHA", lambda nn: nn.MultiheadAttention(6, 2), [_seq(2, 4, 6)] * 3, _forward),
    ("MHA-batch-first", lambda nn: nn.MultiheadAttention(6, 3, batch_first=True),
     [_x(2, 4, 6), _x(2, 5, 6), _x(2, 5, 6)], _forward),
    ("MHA-bool-masks", lambda nn: nn.MultiheadAttention(4, 2), [_seq(3, 4, 4), _seq(3, 5, 4), _seq(3, 5, 4),
                                                                _mask(3, 5), _mask(4, 5)],
     _call(None, None, None, "key_padding_mask", "attn_mask")),
    ("MHA-float-masks", lambda nn: nn.MultiheadAttention(4, 2, batch_first=True),
     [_x(3, 4, 4), _x(3, 5, 4), _x(3, 5, 4), _float_mask(3, 5), _float_mask(4, 5)],
     _call(None, None, None, "key_padding_mask", "attn_mask")),
    ("MHA-3d-mask-per-head", lambda nn: nn.MultiheadAttention(4, 2), [_seq(3, 4, 4)] * 3 + [_mask(6, 4, 4)],
     _call(None, None, None, "attn_mask", average_attn_weights=False)),
    ("MHA-no-weights", lambda nn: nn.MultiheadAttention(4, 2, batch_first=True), [_x(2, 3, 4)] * 3 + [_mask(2, 3)],
     _call(None, None, None, "key_padding_mask", need_weights=False)),
    ("MHA-causal", lambda nn: nn.MultiheadAttention(4, 1), [_seq(2, 4, 4)] * 3 + [CAUSAL],
     _call(None, None, None, "attn_mask", is_causal=True)),
    ("MHA-kdim-vdim", lambda nn: nn.MultiheadAttention(4, 2, kdim=3, vdim=5), [_seq(2, 4, 4), _seq(2, 6, 3),
                                                                               _seq(2, 6, 5), _mask(2, 6)],
     _call(None, None, None, "key_padding_mask")),
    ("MHA-bias-kv-zero-attn", lambda nn: nn.MultiheadAttention(4, 2, add_bias_kv=True, add_zero_attn=True),
     [_seq(2, 3, 4), _seq(2, 5, 4), _seq(2, 5, 4), _mask(2, 5), _mask(3, 5)],
     _call(None, None, None, "key_padding_mask", "attn_mask")),
    ("MHA-no-bias-unbatched", lambda nn: nn.MultiheadAttention(4, 2, bias=False),
     [_x(3, 4), _x(5, 4), _x(5, 4), _mask(5), _mask(2, 3, 5)],
     _call(None, None, None, "key_padding_mask", "attn_mask", average_attn_weights=False)),
]

for batch_first in (False, True):
    for norm_first in (False, True):
        shape = (3, 2, 4) if not batch_first else (2, 3, 4)
        CASES.append((f"EncoderLayer-bf{int(batch_first)}-nf{int(norm_first)}",
                      lambda nn, b=batch_first, f=norm_first: nn.TransformerEncoderLayer(
                          4, 2, dim_feedforward=6, dropout=0.0, batch_first=b, norm_first=f),
                      [_x(*shape), _mask(2, 3), _mask(3, 3)], _call(None, "src_key_padding_mask", "src_mask")))
CASES += [
    ("EncoderLayer-gelu-eval", lambda nn: nn.TransformerEncoderLayer(4, 2, 8, activation="gelu", layer_norm_eps=1e-3,
                                                                     bias=False).eval(), [_x(3, 2, 4)], _forward),
    ("Encoder", lambda nn: nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2, 6, dropout=0.0, batch_first=True),
                                                 2, norm=nn.LayerNorm(4)),
     [_x(2, 3, 4), _float_mask(2, 3)], _call(None, "src_key_padding_mask")),
]

# recurrent layers: input, then hx (LSTM: h_0 and c_0) when given; every input gets a gradient
_RNN_INPUTS = {"RNN", "GRU", "LSTM", "RNNCell", "GRUCell", "LSTMCell"}


def _with_pair(module, x, h, c):
    return module(x, (h, c))


CASES += [
    ("RNN", lambda nn: nn.RNN(3, 4), [_x(5, 2, 3)], _forward),
    ("RNN-relu-2-layers-hx", lambda nn: nn.RNN(3, 4, 2, nonlinearity="relu", batch_first=True),
     [_x(2, 5, 3), _x(2, 2, 4)], _forward),
    ("RNN-bi-unbatched-no-bias", lambda nn: nn.RNN(3, 4, bidirectional=True, bias=False), [_x(5, 3)], _forward),
    ("GRU", lambda nn: nn.GRU(3, 4), [_x(5, 2, 3)], _forward),
    ("GRU-2-layers-bi-hx", lambda nn: nn.GRU(3, 4, 2, bidirectional=True, batch_first=True),
     [_x(2, 5, 3), _x(4, 2, 4)], _forward),
    ("LSTM", lambda nn: nn.LSTM(3, 4), [_x(5, 2, 3)], _forward),
    ("LSTM-2-layers-bi-proj-hx", lambda nn: nn.LSTM(3, 4, 2, bidirectional=True, proj_size=2),
     [_x(5, 2, 3), _x(4, 2, 2), _x(4, 2, 4)], _with_pair),
    ("LSTM-unbatched-no-bias-hx", lambda nn: nn.LSTM(3, 4, bias=False, batch_first=True),
     [_x(5, 3), _x(1, 4), _x(1, 4)], _with_pair),
    ("RNNCell-relu", lambda nn: nn.RNNCell(3, 4, nonlinearity="relu"), [_x(2, 3), _x(2, 4)], _forward),
    ("GRUCell", lambda nn: nn.GRUCell(3, 4), [_x(2, 3), _x(2, 4)], _forward),
    ("GRUCell-unbatched-zero-state", lambda nn: nn.GRUCell(3, 4, bias=False), [_x(3)], _forward),
    ("LSTMCell", lambda nn: nn.LSTMCell(3, 4), [_x(2, 3), _x(2, 4), _x(2, 4)], _with_pair),
]


def _flat(out) -> list:
    """The tensors of a result, nested tuples (LSTM's (output, (h_n, c_n))) flattened."""
    if isinstance(out, tuple):
        return [t for o in out for t in _flat(o)]
    return [] if out is None else [out]


def _run(lib, module, arrays, call, inputs: int) -> tuple:
    """Outputs, gradients of the first ``inputs`` inputs (the others are masks) and parameter gradients of
    ``call(module, *arrays)`` under a random linear loss."""
    xs = [lib.tensor(a, requires_grad=a.dtype.kind == "f" and i < inputs) for i, a in enumerate(arrays)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch's deprecation of mixed mask types, say
        out = call(module, *xs)
    outs = _flat(out)
    rng = np.random.default_rng(1)
    loss = sum((o * lib.tensor(rng.standard_normal(tuple(o.shape)))).sum() for o in outs)
    loss.backward()
    return ([o.detach().numpy() for o in outs], [x.grad.numpy() for x in xs if x.requires_grad],
            {n: p.grad.numpy() for n, p in module.named_parameters()})


@pytest.mark.parametrize("name, make, arrays, call", CASES, ids=[c[0] for c in CASES])
def test_layer_matches_pytorch(torch, name, make, arrays, call):
    theirs = make(torch.nn).double()
    ours = make(nx.nn).double().train(theirs.training)
    state = theirs.state_dict()
    assert list(ours.state_dict()) == list(state)
    ours.load_state_dict({k: nx.tensor(v.numpy()) for k, v in state.items()})
    # query, key and value; a recurrent layer's input and initial states; else one input
    inputs = 3 if name.startswith("MHA") else len(arrays) if name.partition("-")[0] in _RNN_INPUTS else 1
    got, want = _run(nx, ours, arrays, call, inputs), _run(torch, theirs, arrays, call, inputs)
    assert len(got[0]) == len(want[0]) and len(got[1]) == len(want[1])
    tol = dict(rtol=1e-7, atol=1e-10)
    for what, a, b in [("output", *p) for p in zip(got[0], want[0])] + [("input grad", *p) for p in zip(got[1],
                                                                                                       want[1])]:
        assert a.shape == b.shape, f"{what}: {a.shape} vs {b.shape}"
        np.testing.assert_allclose(a, b, **tol, err_msg=what)
    assert got[2].keys() == want[2].keys()
    for n in want[2]:
        np.testing.assert_allclose(got[2][n], want[2][n], **tol, err_msg=f"grad of {n}")


def test_embedding_padding_row_gets_no_gradient_as_in_pytorch(torch):
    idx = np.array([[0, 2, 0], [1, 0, 3]])
    grads = []
    for lib in (nx, torch):
        emb = lib.nn.Embedding(4, 2, padding_idx=0).double()
        assert not emb.weight.detach().numpy()[0].any()  # the padding row starts at zero
        emb(lib.tensor(idx)).sum().backward()
        grads.append(emb.weight.grad.numpy())
    np.testing.assert_array_equal(grads[0], grads[1])
    assert not grads[0][0].any() and grads[0][1].all()


def test_default_initialisations_are_pytorchs_distributions(torch):
    """The same distributions (not values: each library has its own generator): bounds and spreads of large draws."""
    def stats(lib):
        lib.manual_seed(0)
        mha = lib.nn.MultiheadAttention(256, 4, add_bias_kv=True)
        conv = lib.nn.Conv1d(16, 32, 5)
        return {"in_proj bound": mha.in_proj_weight.detach().abs().max().item(),
                "in_proj_bias": mha.in_proj_bias.detach().abs().max().item(),
                "out_proj bound": mha.out_proj.weight.detach().abs().max().item(),
                "out_proj.bias": mha.out_proj.bias.detach().abs().max().item(),
                "bias_k std": mha.bias_k.detach().std().item(),
                "conv bound": conv.weight.detach().abs().max().item(),
                "conv bias bound": conv.bias.detach().abs().max().item(),
                "embedding std": lib.nn.Embedding(400, 50).weight.detach().std().item(),
                "layer_norm": lib.nn.LayerNorm(3).weight.detach().sum().item(),
                "group_norm": lib.nn.GroupNorm(1, 3).bias.detach().sum().item(),
                "lstm weight_hr bound": lib.nn.LSTM(8, 64, proj_size=16).weight_hr_l0.detach().abs().max().item(),
                "gru bias spread": lib.nn.GRU(8, 64).bias_hh_l0.detach().std().item(),
                "rnn cell bound": lib.nn.RNNCell(8, 100).weight_ih.detach().abs().max().item()}
    ours, theirs = stats(nx), stats(torch)
    for key in ours:
        assert ours[key] == pytest.approx(theirs[key], rel=0.15, abs=1e-12), key


@pytest.mark.parametrize("make", [lambda nn: nn.LSTM(3, 5, 2, bias=False, batch_first=True, dropout=0.5,
                                                     bidirectional=True, proj_size=2),
                                  lambda nn: nn.RNN(3, 5, nonlinearity="relu"), lambda nn: nn.GRU(3, 5, dropout=0.0),
                                  lambda nn: nn.RNNCell(3, 5, bias=False, nonlinearity="relu"),
                                  lambda nn: nn.LSTMCell(3, 5)], ids=["LSTM", "RNN", "GRU", "RNNCell", "LSTMCell"])
def test_recurrent_reprs_are_pytorchs(torch, make):
    assert repr(make(nx.nn)) == repr(make(torch.nn))
