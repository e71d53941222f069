"""RNN, LSTM, GRU and their cells: values against a NumPy reference of the recurrences for every layout and option,
parameters as PyTorch's, gradients to second order, functional and per-task (batched_call) calls, dropout between
layers, errors that name the problem."""

import collections
import functools
import warnings

import numpy as np
import pytest

import neurenix as nx
from neurenix import nn
from neurenix.func import batched_call, functional_call
from neurenix.testing import gradcheck, gradgradcheck
from task_helpers import looped, task_params

KINDS = {"RNN_TANH": nn.RNN, "RNN_RELU": functools.partial(nn.RNN, nonlinearity="relu"), "LSTM": nn.LSTM,
         "GRU": nn.GRU}
CELLS = {"RNN_TANH": nn.RNNCell, "RNN_RELU": functools.partial(nn.RNNCell, nonlinearity="relu"), "LSTM": nn.LSTMCell,
         "GRU": nn.GRUCell}
L, N, IN, HID, PROJ = 3, 2, 3, 4, 2


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# -- the reference: the recurrences written out in NumPy (float64), time-major batched arrays ----------------------

def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def _ref_step(mode, x, h, c, w_ih, w_hh, b_ih, b_hh, w_hr=None):
    """One step: the new (h, c) (c unused but by LSTM)."""
    gi, gh = x @ w_ih.T + b_ih, h @ w_hh.T + b_hh
    if mode == "RNN_TANH":
        return np.tanh(gi + gh), c
    if mode == "RNN_RELU":
        return np.maximum(gi + gh, 0), c
    if mode == "GRU":
        (ir, iz, i_n), (hr, hz, h_n) = np.split(gi, 3, axis=-1), np.split(gh, 3, axis=-1)
        r, z = _sigmoid(ir + hr), _sigmoid(iz + hz)
        n = np.tanh(i_n + r * h_n)
        return (1 - z) * n + z * h, c
    i, f, g, o = np.split(gi + gh, 4, axis=-1)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    h = _sigmoid(o) * np.tanh(c)
    return (h if w_hr is None else h @ w_hr.T), c


def _ref_rnn(mode, x, params, layers, directions, h0, c0):
    """x (L, N, in); params by name (absent biases are zeros); h0, c0 (layers * directions, N, size): the output
    (L, N, directions * H_out) and the final h and c, stacked as h0 and c0."""
    hs, cs = [], []
    for layer in range(layers):
        outs = []
        for d in range(directions):
            k, sfx = layer * directions + d, f"_l{layer}{'_reverse' if d else ''}"
            w_ih, w_hh = params["weight_ih" + sfx], params["weight_hh" + sfx]
            zero = np.zeros(w_ih.shape[0])
            b_ih, b_hh = params.get("bias_ih" + sfx, zero), params.get("bias_hh" + sfx, zero)
            h, c, out = h0[k], c0[k], []
            for t in reversed(range(len(x))) if d else range(len(x)):
                h, c = _ref_step(mode, x[t], h, c, w_ih, w_hh, b_ih, b_hh, params.get("weight_hr" + sfx))
                out.append(h)
            outs.append(np.stack(out[::-1] if d else out))
            hs.append(h)
            cs.append(c)
        x = np.concatenate(outs, -1)
    return x, np.stack(hs), np.stack(cs)


def _numpy_params(m):
    return {k: v.numpy() for k, v in m.state_dict().items()}


# every layout and option: (kind, proj_size) x num_layers x bidirectional x batch_first x unbatched x hx given
CONFIGS = [(kind, proj) for kind in KINDS for proj in ((0, PROJ) if kind == "LSTM" else (0,))]


@pytest.mark.parametrize("hx_given", [False, True], ids=["zero-state", "hx"])
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["seq-first", "batch-first"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("kind, proj", CONFIGS, ids=[f"{k}-proj{p}" for k, p in CONFIGS])
def test_values_and_shapes_match_the_reference(kind, proj, layers, bidirectional, batch_first, batched, hx_given):
    options = dict(proj_size=proj) if proj else {}
    m = KINDS[kind](IN, HID, layers, bias=(layers == 1), batch_first=batch_first, bidirectional=bidirectional,
                    dtype=nx.float64, **options)  # bias=False for two layers: both variants of the parameters
    d, h_out = 1 + bidirectional, proj or HID
    x = _rand(L, N, IN)  # time-major: the reference's layout
    h0, c0 = 0.5 * _rand(d * layers, N, h_out, seed=1), 0.5 * _rand(d * layers, N, HID, seed=2)
    want_out, want_h, want_c = _ref_rnn(kind, x, _numpy_params(m), layers, d, h0 if hx_given else 0 * h0,
                                        c0 if hx_given else 0 * c0)
    if not batched:  # the first sequence alone
        x, h0, c0, want_out, want_h, want_c = x[:, 0], h0[:, 0], c0[:, 0], want_out[:, 0], want_h[:, 0], want_c[:, 0]
    elif batch_first:
        x, want_out = x.swapaxes(0, 1), want_out.swapaxes(0, 1)
    hx = None if not hx_given else (nx.tensor(h0), nx.tensor(c0)) if kind == "LSTM" else nx.tensor(h0)
    out, h_n = m(nx.tensor(x), hx)
    h_n, c_n = h_n if kind == "LSTM" else (h_n, None)
    batch = (N,) if batched else ()
    seq = ((N, L) if batch_first else (L, N)) if batched else (L,)
    assert out.shape == (*seq, d * h_out) and h_n.shape == (d * layers, *batch, h_out)
    np.testing.assert_allclose(out.numpy(), want_out, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h_n.numpy(), want_h, rtol=1e-12, atol=1e-14)
    if kind == "LSTM":
        assert c_n.shape == (d * layers, *batch, HID)
        np.testing.assert_allclose(c_n.numpy(), want_c, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("hx_given", [False, True], ids=["zero-state", "hx"])
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("kind", KINDS)
def test_cells_match_the_reference_step(kind, bias, batched, hx_given):
    cell = CELLS[kind](IN, HID, bias=bias, dtype=nx.float64)
    p = _numpy_params(cell)
    zero = np.zeros(p["weight_ih"].shape[0])
    x, h, c = _rand(N, IN), _rand(N, HID, seed=1), _rand(N, HID, seed=2)
    if not hx_given:
        h, c = 0 * h, 0 * c
    want = _ref_step(kind, x, h, c, p["weight_ih"], p["weight_hh"], p.get("bias_ih", zero), p.get("bias_hh", zero))
    if not batched:
        x, h, c, want = x[0], h[0], c[0], (want[0][0], want[1][0])
    hx = None if not hx_given else (nx.tensor(h), nx.tensor(c)) if kind == "LSTM" else nx.tensor(h)
    got = cell(nx.tensor(x), hx)
    for g, w in zip(got if kind == "LSTM" else (got,), want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-12, atol=1e-14)


def test_a_layer_of_one_step_is_its_cell():
    lstm, cell = nn.LSTM(IN, HID, dtype=nx.float64), nn.LSTMCell(IN, HID, dtype=nx.float64)
    cell.load_state_dict({k[:-3]: v for k, v in lstm.state_dict().items()})  # weight_ih_l0 -> weight_ih
    x = nx.tensor(_rand(1, N, IN))
    out, (h, c) = lstm(x)
    h1, c1 = cell(x[0])
    np.testing.assert_allclose(out[0].numpy(), h1.numpy(), rtol=1e-14)
    np.testing.assert_allclose(h[0].numpy(), h1.numpy(), rtol=1e-14)
    np.testing.assert_allclose(c[0].numpy(), c1.numpy(), rtol=1e-14)


# -- parameters ------------------------------------------------------------------------------------------------------

def test_parameter_names_order_and_shapes_are_pytorchs():
    m = nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    want = []
    for layer, n_in in ((0, 3), (1, 4)):  # the second layer takes both directions' projected h: 2 * 2
        for sfx in ("", "_reverse"):
            want += [(f"weight_ih_l{layer}{sfx}", (20, n_in)), (f"weight_hh_l{layer}{sfx}", (20, 2)),
                     (f"bias_ih_l{layer}{sfx}", (20,)), (f"bias_hh_l{layer}{sfx}", (20,)),
                     (f"weight_hr_l{layer}{sfx}", (2, 5))]
    assert [(k, v.shape) for k, v in m.state_dict().items()] == want
    assert [n for n, _ in nn.GRU(3, 4, bias=False).named_parameters()] == ["weight_ih_l0", "weight_hh_l0"]
    assert [(n, p.shape) for n, p in nn.GRUCell(3, 4).named_parameters()] == [
        ("weight_ih", (12, 3)), ("weight_hh", (12, 4)), ("bias_ih", (12,)), ("bias_hh", (12,))]
    assert nn.RNNCell(3, 4, bias=False).bias_ih is None
    assert [len(w) for w in m.all_weights] == [5, 5, 5, 5] and m.all_weights[1][0] is m.weight_ih_l0_reverse


@pytest.mark.parametrize("make", [lambda: nn.LSTM(8, 64, 2, proj_size=16), lambda: nn.GRUCell(8, 64)],
                         ids=["LSTM", "GRUCell"])
def test_initialisation_is_uniform_within_one_over_sqrt_hidden(make):
    nx.manual_seed(0)
    values = np.concatenate([p.numpy().ravel() for p in make().parameters()])
    bound = 1 / 8  # 1 / sqrt(hidden_size = 64), for every parameter, weight_hr too
    assert np.abs(values).max() <= bound and np.abs(values).max() > 0.99 * bound
    assert values.std() == pytest.approx(bound / np.sqrt(3), rel=0.02)  # a uniform's spread


def test_dtype_device_and_conversions():
    m = nn.GRU(2, 3, dtype=nx.float64, device="cpu")
    assert all(p.dtype == nx.float64 for p in m.parameters())
    out, h = m.float()(nx.zeros(4, 1, 2))
    assert out.dtype == h.dtype == nx.float32
    m.flatten_parameters()  # nothing to do, as on PyTorch's CPU


def test_repr_is_pytorchs():
    assert repr(nn.LSTM(3, 5, 2, bias=False, batch_first=True, dropout=0.5, bidirectional=True, proj_size=2)) == (
        "LSTM(3, 5, proj_size=2, num_layers=2, bias=False, batch_first=True, dropout=0.5, bidirectional=True)")
    assert repr(nn.RNN(3, 5, nonlinearity="relu")) == "RNN(3, 5)"
    assert repr(nn.RNNCell(3, 5, bias=False, nonlinearity="relu")) == "RNNCell(3, 5, bias=False, nonlinearity=relu)"
    assert repr(nn.GRUCell(3, 5)) == "GRUCell(3, 5)"


# -- gradients -------------------------------------------------------------------------------------------------------

def _functional(m, names):
    """``(x, hx..., weights...) -> every output`` of ``m`` with the weights ``names`` passed in (functional_call)."""
    lstm = isinstance(m, (nn.LSTM, nn.LSTMCell))
    states = 2 if lstm else 1

    def f(x, *rest):
        hx = (rest[0], rest[1]) if lstm else rest[0]
        out = functional_call(m, dict(zip(names, rest[states:])), x, hx)
        return (out[0], *out[1]) if isinstance(m, nn.RNNBase) and lstm else out
    return f


def _leaves(m, names, x_shape, state_shapes):
    ts = [_rand(*x_shape, seed=3)] + [0.5 * _rand(*s, seed=4 + i) for i, s in enumerate(state_shapes)]
    ts += [getattr(m, n).detach().numpy() for n in names]
    return [nx.tensor(t, requires_grad=True) for t in ts]


# small shapes (every input and weight is a finite-difference direction), both directions, and LSTM's projection
GRAD_CASES = {
    "RNN-tanh-bi": (lambda: nn.RNN(2, 2, bidirectional=True), ["weight_ih_l0", "weight_hh_l0_reverse",
                                                                  "bias_hh_l0"]),
    "RNN-relu": (lambda: nn.RNN(2, 3, nonlinearity="relu"), ["weight_hh_l0", "bias_ih_l0"]),
    "GRU-2-layers": (lambda: nn.GRU(2, 2, 2), ["weight_ih_l1", "weight_hh_l0", "bias_hh_l1"]),
    "LSTM-proj-bi": (lambda: nn.LSTM(2, 3, bidirectional=True, proj_size=2, batch_first=True),
                     ["weight_hh_l0_reverse", "bias_ih_l0", "weight_hr_l0"]),
}


@pytest.mark.parametrize("case", GRAD_CASES)
def test_layer_gradients_first_and_second_order(case):
    make, names = GRAD_CASES[case]
    nx.manual_seed(0)
    m = make().double()
    d, h = 1 + m.bidirectional, m.proj_size or m.hidden_size
    states = [(d * m.num_layers, 1, h)] + ([(d * m.num_layers, 1, m.hidden_size)] if m.mode == "LSTM" else [])
    args = _leaves(m, names, (1, 2, 2) if m.batch_first else (2, 1, 2), states)  # two steps, one sequence
    f = _functional(m, names)
    assert gradcheck(f, args) and gradgradcheck(f, args)


@pytest.mark.parametrize("kind", ["RNN_RELU", "LSTM", "GRU"])
def test_cell_gradients_first_and_second_order(kind):
    nx.manual_seed(0)
    m = CELLS[kind](2, 2, dtype=nx.float64)
    names = ["weight_ih", "bias_hh"]
    f = _functional(m, names)
    args = _leaves(m, names, (1, 2), [(1, 2)] * (2 if kind == "LSTM" else 1))
    assert gradcheck(f, args) and gradgradcheck(f, args)


def test_long_sequence_gradient_matches_the_step_by_step_one():
    """Sequences long enough to be sliced by blocks give the gradient of slicing step by step."""
    nx.manual_seed(0)
    m = nn.GRU(2, 3, batch_first=True).double()
    x = nx.tensor(_rand(2, 11, 2), requires_grad=True)  # 11 steps: blocks of 3, the last of 2
    g = nx.autograd.grad((m(x)[0] ** 2).sum(), [x, m.weight_hh_l0])

    def stepwise(x):
        h, outs = nx.zeros(2, 3, dtype=nx.float64), []
        cell = nn.GRUCell(2, 3).double()
        cell.load_state_dict({k[:-3]: v for k, v in m.state_dict().items()})
        for t in range(x.shape[1]):
            h = functional_call(cell, {"weight_hh": m.weight_hh_l0}, x[:, t], h)
            outs.append(h)
        return nx.stack(outs, 1)
    want = nx.autograd.grad((stepwise(x) ** 2).sum(), [x, m.weight_hh_l0])
    for a, b in zip(g, want):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-14)


# -- functional and per-task calls (meta-learning) -------------------------------------------------------------------

def test_functional_call_uses_the_weights_given():
    m = nn.LSTM(IN, HID, 2, bidirectional=True, dtype=nx.float64)
    other = nn.LSTM(IN, HID, 2, bidirectional=True, dtype=nx.float64)
    x = nx.tensor(_rand(L, N, IN))
    got = functional_call(m, dict(other.named_parameters()), x)
    want = other(x)
    np.testing.assert_array_equal(got[0].numpy(), want[0].numpy())
    np.testing.assert_array_equal(got[1][1].numpy(), want[1][1].numpy())
    assert not np.array_equal(m(x)[0].numpy(), want[0].numpy())


class _SequenceModel(nn.Module):
    """A sequence classifier as a meta-learner's model: a recurrent layer, a linear head on the last layer's h_n."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn, self.head = rnn, nn.Linear(rnn.hidden_size * (1 + rnn.bidirectional), 2)

    def forward(self, x):  # x (N, L, features): a task's rows are its sequences
        _, h = self.rnn(x if self.rnn.batch_first else x.transpose(0, 1))
        h = h[0] if isinstance(h, tuple) else h
        return self.head(h[-1] if not self.rnn.bidirectional else nx.cat([h[-2], h[-1]], -1))


SEQUENCE_MODELS = {"LSTM-batch-first": lambda: nn.LSTM(2, 3, 2, batch_first=True),
                   "GRU-seq-first-bi": lambda: nn.GRU(2, 3, bidirectional=True)}


@pytest.mark.parametrize("per_task", [True, False], ids=["per-task", "shared"])
@pytest.mark.parametrize("rnn", SEQUENCE_MODELS)
def test_batched_call_equals_looped_functional_call(rnn, per_task):
    """Inside batched_call the tasks' sequences share the batch axis and per-task weights apply to their own."""
    nx.manual_seed(0)
    model = _SequenceModel(SEQUENCE_MODELS[rnn]()).double()
    params = task_params(model, 3 if per_task else None)
    x = nx.randn(3, 2, 4, 2, dtype=nx.float64)  # 3 tasks of 2 sequences of 4 steps
    names = list(params)
    leaves = [params[n].detach().requires_grad_() for n in names]
    out = batched_call(model, dict(zip(names, leaves)), x)
    want = looped(model, dict(zip(names, leaves)), x, per_task=per_task)
    np.testing.assert_allclose(out.numpy(), want.numpy(), rtol=1e-12, atol=1e-14)
    g, g_ref = (nx.autograd.grad((y ** 2).sum(), leaves) for y in (out, want))
    for n, a, b in zip(names, g, g_ref):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12, err_msg=n)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_cells_take_per_task_weights(kind):
    nx.manual_seed(0)

    class Step(nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = CELLS[kind](2, 3, dtype=nx.float64)

        def forward(self, x):
            h = self.cell(x)
            return h[1] if kind == "LSTM" else h
    model = Step()
    params = task_params(model, 3)
    x = nx.randn(3, 4, 2, dtype=nx.float64)  # 3 tasks of 4 rows
    np.testing.assert_allclose(batched_call(model, params, x).numpy(),
                               looped(model, params, x, per_task=True).numpy(), rtol=1e-12, atol=1e-14)


def test_per_task_weights_second_order():
    """MAML's meta-gradient runs through per-task weights: gradcheck and gradgradcheck through batched_call."""
    nx.manual_seed(0)
    model = _SequenceModel(nn.LSTM(2, 2, batch_first=True)).double()
    params = task_params(model, 2)
    names = ["rnn.weight_hh_l0", "rnn.bias_ih_l0"]
    x = nx.randn(2, 1, 2, 2, dtype=nx.float64)

    def f(*ws):
        return (batched_call(model, {**params, **dict(zip(names, ws))}, x) ** 2).sum()

    leaves = [params[n].detach().requires_grad_() for n in names]
    assert gradcheck(f, leaves) and gradgradcheck(f, leaves)


# -- dropout between layers ------------------------------------------------------------------------------------------

def test_dropout_applies_between_layers_in_training_only():
    nx.manual_seed(0)
    m = nn.GRU(IN, HID, 2, dropout=1.0, dtype=nx.float64)  # the second layer sees zeros in training
    x1, x2 = nx.tensor(_rand(L, N, IN)), nx.tensor(_rand(L, N, IN, seed=1))
    np.testing.assert_array_equal(m(x1)[0].numpy(), m(x2)[0].numpy())
    assert not np.allclose(m(x1)[1][0].numpy(), m(x2)[1][0].numpy())  # the first layer's state does see x
    m.eval()
    assert not np.allclose(m(x1)[0].numpy(), m(x2)[0].numpy())
    half = nn.GRU(IN, HID, 2, dropout=0.5, dtype=nx.float64)
    half.load_state_dict(m.state_dict())
    np.testing.assert_array_equal(half.eval()(x1)[0].numpy(), m(x1)[0].numpy())
    assert not np.allclose(half.train()(x1)[0].numpy(), m(x1)[0].numpy())


def test_dropout_with_one_layer_warns_as_pytorch():
    with pytest.warns(UserWarning, match="num_layers=1 it does nothing") as record:
        nn.LSTM(2, 3, dropout=0.2)
    assert record[0].filename == __file__  # pointing at the caller
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.LSTM(2, 3, 2, dropout=0.2)


# -- errors ----------------------------------------------------------------------------------------------------------

Packed = collections.namedtuple("PackedSequence", "data batch_sizes sorted_indices unsorted_indices")
_LSTM = nn.LSTM(3, 4, 2)
_X = nx.zeros(5, 2, 3)


@pytest.mark.parametrize("call, error, match", [
    (lambda: nn.LSTM(0, 4), ValueError, "LSTM: input_size must be at least 1, got 0"),
    (lambda: nn.GRU(3, 4, num_layers=0), ValueError, "GRU: num_layers must be at least 1"),
    (lambda: nn.RNN(3, 4.0), TypeError, "RNN: hidden_size must be an int"),
    (lambda: nn.RNN(3, 4, nonlinearity="sigmoid"), ValueError, "nonlinearity must be one of 'tanh', 'relu'"),
    (lambda: nn.RNNCell(3, 4, nonlinearity="gelu"), ValueError, "RNNCell: nonlinearity must be one of"),
    (lambda: nn.LSTM(3, 4, 2, dropout=1.5), ValueError, r"LSTM: dropout must be a probability, .* got 1.5"),
    (lambda: nn.LSTM(3, 4, 2, dropout=True), ValueError, "dropout must be a probability"),
    (lambda: nn.LSTM(3, 4, proj_size=4), ValueError, r"proj_size \(4\) must be smaller than hidden_size \(4\)"),
    (lambda: nn.LSTM(3, 4, proj_size=-1), ValueError, "proj_size must be at least 0"),
    (lambda: nn.RNNBase("GRU", 3, 4, proj_size=2), ValueError, "proj_size=2 is only supported by LSTM"),
    (lambda: nn.RNNBase("LSTMX", 3, 4), ValueError, "mode must be one of"),
    (lambda: nn.GRU(3, 4, batch_first=1.0), TypeError, "GRU: batch_first must be True or False"),
    (lambda: _LSTM(nx.zeros(5, 2, 2)), nx.ShapeError, r"input of shape \(5, 2, 2\) must have input_size=3"),
    (lambda: _LSTM(nx.zeros(5, 2, 1, 3)), nx.ShapeError, r"3-D \(batched\) or 2-D \(unbatched\) input, got shape"),
    (lambda: _LSTM(nx.zeros(0, 2, 3)), nx.ShapeError, "has no time steps"),
    (lambda: _LSTM(_X.double()), nx.DTypeError, "input dtype .*float64 does not match the weights' .*float32"),
    (lambda: _LSTM(_X, nx.zeros(2, 2, 4)), TypeError, r"hx must be a pair \(h_0, c_0\)"),
    (lambda: _LSTM(_X, (nx.zeros(2, 2, 4), nx.zeros(2, 3, 4))), nx.ShapeError,
     r"expected c_0 of shape \(2, 2, 4\) \(num_layers \* num_directions, batch, hidden_size\) for an input of "
     r"shape \(5, 2, 3\), got \(2, 3, 4\)"),
    (lambda: _LSTM(_X[:, 0], (nx.zeros(2, 1, 4), nx.zeros(2, 1, 4))), nx.ShapeError,
     r"expected h_0 of shape \(2, 4\) \(num_layers \* num_directions, hidden_size\)"),
    (lambda: nn.LSTM(3, 4, proj_size=2)(_X, (nx.zeros(1, 2, 4), nx.zeros(1, 2, 4))), nx.ShapeError,
     r"h_0 of shape \(1, 2, 2\) \(num_layers \* num_directions, batch, proj_size\)"),
    (lambda: nn.GRU(3, 4, batch_first=True)(_X, nx.zeros(1, 2, 4)), nx.ShapeError,
     r"hx of shape \(1, 5, 4\)"),
    (lambda: nn.RNN(3, 4)(_X, nx.zeros(1, 2, 4).double()), nx.DTypeError, "hx dtype"),
    (lambda: _LSTM(Packed(_X, nx.tensor([2, 2]), None, None)), NotImplementedError,
     "LSTM: PackedSequence inputs are not supported; pad the sequences"),
    (lambda: _LSTM([[1.0, 2.0, 3.0]]), TypeError, "LSTM: input must be a Tensor"),
    (lambda: nn.GRUCell(3, 4)(nx.zeros(2, 2)), nx.ShapeError, r"GRUCell: expected an input of shape \(N, 3\)"),
    (lambda: nn.GRUCell(3, 4)(nx.zeros(2, 3), nx.zeros(3, 4)), nx.ShapeError,
     r"expected hx of shape \(2, 4\) \(hidden_size=4\) for an input of shape \(2, 3\), got \(3, 4\)"),
    (lambda: nn.RNNCell(3, 4)(nx.zeros(3), nx.zeros(1, 4)), nx.ShapeError, r"expected hx of shape \(4,\)"),
    (lambda: nn.LSTMCell(3, 4)(nx.zeros(3), nx.zeros(4)), TypeError, r"hx must be a pair \(h, c\)"),
])
def test_errors_name_the_problem(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_unbatched_input_inside_task_batch_is_refused():
    rnn = nn.GRU(2, 3)

    class Unbatched(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = rnn

        def forward(self, x):  # x (rows, 2): read as one sequence
            return self.rnn(x)[0]

    with pytest.raises(nx.ShapeError, match="inside task_batch the input needs a batch axis"):
        batched_call(Unbatched(), {}, nx.zeros(2, 4, 2))

