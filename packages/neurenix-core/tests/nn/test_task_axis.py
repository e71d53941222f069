"""The task axis: ``batched_call`` equals stacking ``functional_call`` over tasks, values and gradients."""

import numpy as np
import pytest

import neurenix as nx
from neurenix import nn
from neurenix.func import batched_call, functional_call
from neurenix.nn.task_axis import stacks_tasks, task_batch, task_count
from neurenix.testing import gradcheck, gradgradcheck
from task_helpers import looped, task_params

T = 3


def _conv_net():
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 4, 3, padding=1, groups=2), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))


def _mlp():
    return nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 2))


def _row_mlp():  # only layers that take the task axis as it is: batched_call does not merge the rows
    return nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Dropout(0.0), nn.Linear(5, 4), nn.Sigmoid(), nn.Identity(),
                         nn.Linear(4, 2), nn.Tanh())


# the row-wise MLP also on rows that are (2, 3) sequences, which Linear flattens per task
NETS = {"conv": (_conv_net, (5, 2, 8, 8)), "mlp": (_mlp, (4, 3)), "row-mlp": (_row_mlp, (4, 3)),
        "row-mlp-seq": (_row_mlp, (4, 2, 3))}


def _setup(net, per_task, seed=0):
    nx.manual_seed(seed)
    make, row_shape = NETS[net]
    model = make().double()
    params = task_params(model, T if per_task else None)
    x = nx.randn(T, *row_shape, dtype=nx.float64)
    return model, params, x


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("per_task", [True, False], ids=["per-task", "shared"])
@pytest.mark.parametrize("net", NETS)
def test_batched_call_equals_looped_functional_call(net, per_task, train):
    model, params, x = _setup(net, per_task)
    model.train(train)
    out = batched_call(model, params, x)
    np.testing.assert_allclose(out.numpy(), looped(model, params, x, per_task=per_task).numpy(), rtol=1e-12, atol=1e-12)
    assert out.shape[:2] == (T, x.shape[1])


@pytest.mark.parametrize("per_task", [True, False], ids=["per-task", "shared"])
@pytest.mark.parametrize("net", NETS)
def test_batched_call_gradients_first_and_second_order(net, per_task):
    model, params, x = _setup(net, per_task)
    names = list(params)
    leaves = [params[n].detach().requires_grad_() for n in names]
    x = x[:, :2] if net == "conv" else x  # fewer rows: quicker

    def f(*ws):
        return (batched_call(model, dict(zip(names, ws)), x) ** 2).sum()

    def f_looped(*ws):
        return (looped(model, dict(zip(names, ws)), x, per_task=per_task) ** 2).sum()

    g = nx.autograd.grad(f(*leaves), leaves)
    g_ref = nx.autograd.grad(f_looped(*leaves), leaves)
    for a, b in zip(g, g_ref):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)
    if net == "mlp":
        assert gradcheck(f, leaves) and gradgradcheck(f, leaves)


def test_batchnorm_running_stats_move_by_the_task_mean():
    model, params, x = _setup("mlp", per_task=False)
    bn = model[1]
    batched_call(model, params, x)
    h = nx.stack([model[0](x[t]) for t in range(T)])  # BatchNorm1d's input, per task
    mu, var = h.mean(1), h.var(1, unbiased=True)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * mu.mean(0).numpy(), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * var.mean(0).numpy(), rtol=1e-12)


def test_outside_task_batch_linear_keeps_its_own_weight_batching():
    """A Linear with weights (T, out, in) outside task_batch maps x (T, N, in) as F.linear does."""
    nx.manual_seed(0)
    layer = nn.Linear(3, 2).double()
    w, b = nx.randn(4, 2, 3, dtype=nx.float64), nx.randn(4, 2, dtype=nx.float64)
    x = nx.randn(4, 5, 3, dtype=nx.float64)
    out = functional_call(layer, {"weight": w, "bias": b}, x)
    np.testing.assert_allclose(out.numpy(), (x @ w.mT + b.unsqueeze(1)).numpy(), rtol=1e-12)


def test_task_batch_nests_and_restores():
    assert task_count() == 0
    with task_batch(4):
        with task_batch(2):
            assert task_count() == 2
        assert task_count() == 4
    assert task_count() == 0


class _RowSum(nn.Module):
    def forward(self, x):
        return x.sum(0, keepdim=True)


def test_bad_task_axes_are_named():
    model, params, x = _setup("mlp", per_task=True)
    bn = model[1]
    with pytest.raises(nx.ShapeError, match=r"BatchNorm1d: parameter of shape \(3, 5\).*outside task_batch"):
        functional_call(bn, {"weight": params["1.weight"]}, nx.randn(4, 5, dtype=nx.float64))
    with pytest.raises(nx.ShapeError, match="leading task axis of 2"):
        batched_call(model, params, x[:2])
    with pytest.raises(nx.ShapeError, match=r"inputs must be tensors of shape \(tasks, rows, \.\.\.\)"):
        batched_call(model, params, x[0, 0])
    with pytest.raises(nx.ShapeError, match="one row per input row"):
        batched_call(_RowSum(), {}, x)
    with pytest.raises(ValueError, match="positive int"), task_batch(0):
        pass


def test_which_models_take_the_task_axis_as_it_is():
    class MyLinear(nn.Linear):  # its own forward may not be row-wise: not inherited
        pass

    assert stacks_tasks(_row_mlp()) and stacks_tasks(nn.Linear(2, 2))
    assert not stacks_tasks(_mlp())  # BatchNorm1d takes statistics over merged rows
    assert not stacks_tasks(_conv_net()) and not stacks_tasks(MyLinear(2, 2))
    assert not stacks_tasks(nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Flatten())))


# -- the parametrised layers added with PyTorch's names: Conv1d, GroupNorm, LayerNorm, Embedding, attention ----------


class _Attend(nn.Module):
    """MultiheadAttention as a model of batched_call: queries ``x``, keys and values ``context`` (or ``x``), a key
    padding mask if given; its output, or its weights per head."""

    def __init__(self, weights=False, **options):
        super().__init__()
        self.mha, self.weights = nn.MultiheadAttention(4, 2, **options), weights

    def forward(self, x, context=None, pad=None):
        context = x if context is None else context
        out, w = self.mha(x, context, context, key_padding_mask=pad, average_attn_weights=False)
        return w if self.weights else out


def _ints(high, *shape):
    return nx.tensor(np.random.default_rng(5).integers(0, high, (T, *shape)))


def _floats(*shape):
    return nx.randn(T, *shape, dtype=nx.float64)


def _pad(*shape):
    m = np.random.default_rng(6).random((T, *shape)) < 0.4
    m[..., 0] = False
    return nx.tensor(m)


# name: (model, inputs (T, rows, ...)); "rows" are what batched_call merges: sequences (batch_first), or positions
LAYER_NETS = {
    "conv1d-groupnorm": (lambda: nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.GroupNorm(2, 4), nn.SiLU(),
                                               nn.MaxPool1d(2), nn.Conv1d(4, 4, 3, groups=2), nn.Flatten(),
                                               nn.Linear(8, 3), nn.LayerNorm(3)),
                         lambda: [_floats(4, 2, 8)]),
    "embedding-stacked": (lambda: nn.Sequential(nn.Embedding(7, 4, padding_idx=0), nn.LayerNorm(4), nn.ELU(),
                                                nn.Linear(4, 2)), lambda: [_ints(7, 5, 3)]),
    "embedding-merged": (lambda: nn.Sequential(nn.Embedding(7, 4), nn.LayerNorm(4, bias=False), nn.Softplus(),
                                               nn.Flatten(), nn.Linear(12, 2)), lambda: [_ints(7, 5, 3)]),
    "encoder-batch-first": (lambda: nn.TransformerEncoderLayer(4, 2, 6, dropout=0.0, batch_first=True),
                            lambda: [_floats(3, 5, 4)]),
    "encoder-seq-first-pre-norm": (lambda: nn.TransformerEncoderLayer(4, 2, 6, dropout=0.0, norm_first=True),
                                   lambda: [_floats(5, 3, 4)]),
    "attention-cross-masked": (lambda: _Attend(kdim=3, vdim=3, add_bias_kv=True, add_zero_attn=True,
                                               batch_first=True), lambda: [_floats(3, 2, 4), _floats(3, 5, 3),
                                                                           _pad(3, 5)]),
    "attention-unbatched": (lambda: _Attend(), lambda: [_floats(5, 4)]),
    "attention-weights": (lambda: _Attend(weights=True, batch_first=True), lambda: [_floats(3, 4, 4)]),
}


def _layer_setup(net, per_task):
    nx.manual_seed(0)
    make, inputs = LAYER_NETS[net]
    model = make().double()
    return model, task_params(model, T if per_task else None), inputs()


@pytest.mark.parametrize("per_task", [True, False], ids=["per-task", "shared"])
@pytest.mark.parametrize("net", LAYER_NETS)
def test_new_layers_batched_equal_looped(net, per_task):
    model, params, args = _layer_setup(net, per_task)
    out = batched_call(model, params, *args)
    np.testing.assert_allclose(out.numpy(), looped(model, params, *args, per_task=per_task).numpy(), rtol=1e-12,
                               atol=1e-12)
    names = list(params)
    leaves = [params[n].detach().requires_grad_() for n in names]
    # (attention weights do not depend on out_proj: allow_unused)
    g = nx.autograd.grad((batched_call(model, dict(zip(names, leaves)), *args) ** 2).sum(), leaves, allow_unused=True)
    g_ref = nx.autograd.grad((looped(model, dict(zip(names, leaves)), *args, per_task=per_task) ** 2).sum(), leaves,
                             allow_unused=True)
    for n, a, b in zip(names, g, g_ref):
        assert (a is None) == (b is None) == (net == "attention-weights" and n.startswith("mha.out_proj")), n
        if a is not None:
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12, err_msg=n)


def test_new_layers_per_task_second_order():
    """MAML's meta-gradient runs through per-task weights: gradcheck and gradgradcheck through batched_call."""
    model, params, (x,) = _layer_setup("encoder-batch-first", per_task=True)
    names = ["self_attn.in_proj_weight", "norm1.weight", "linear1.bias"]
    x = x[:, :1, :2]  # one sequence of two positions per task: quicker

    def f(*ws):
        return (batched_call(model, {**params, **dict(zip(names, ws))}, x) ** 2).sum()

    leaves = [params[n].detach().requires_grad_() for n in names]
    assert gradcheck(f, leaves) and gradgradcheck(f, leaves)


def test_which_new_layers_take_the_task_axis_as_it_is():
    assert stacks_tasks(LAYER_NETS["embedding-stacked"][0]())
    assert not stacks_tasks(LAYER_NETS["embedding-merged"][0]())  # Flatten merges
    assert not any(stacks_tasks(m) for m in (nn.GroupNorm(1, 2), nn.Conv1d(1, 1, 1), nn.Dropout2d(),
                                             nn.MultiheadAttention(2, 1), nn.TransformerEncoderLayer(2, 1)))
