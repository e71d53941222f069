import math
import re

import numpy as np
import pytest

import neurenix as nx
from neurenix import nn
from neurenix.errors import ShapeError
from neurenix.func import functional_call
from neurenix.nn import functional as F
from neurenix.testing import gradcheck, gradgradcheck


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _t(a, requires_grad=False):
    return nx.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def _np_params(module):
    return {k: v.numpy().astype(np.float64) for k, v in module.named_parameters()}


def _gradcheck_module(module, x):
    """Gradients of ``module(x)`` w.r.t. the input and every parameter, against finite differences."""
    module.double()
    names = [n for n, _ in module.named_parameters()]
    params = [p.detach().requires_grad_() for _, p in module.named_parameters()]

    def fn(inp, *ps):
        return functional_call(module, dict(zip(names, ps)), inp)

    assert gradcheck(fn, [_t(x, requires_grad=True), *params])


def _np_conv2d(x, w, b, stride, padding, dilation, groups):
    n, _, h, wd = x.shape
    o, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, o, oh, ow))
    og = o // groups
    for oc in range(o):
        g = oc // og
        for i in range(oh):
            for j in range(ow):
                for ci in range(cg):
                    for ki in range(kh):
                        for kj in range(kw):
                            out[:, oc, i, j] += (xp[:, g * cg + ci, i * sh + ki * dh, j * sw + kj * dw]
                                                 * w[oc, ci, ki, kj])
    return out if b is None else out + b.reshape(1, o, 1, 1)


def _np_pool(x, k, stride, padding, dilation, reduce, pad_value):
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), constant_values=pad_value)
    oh = (h + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    ow = (w + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    out = np.empty((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            win = xp[:, :, i * stride:i * stride + dilation * (k - 1) + 1:dilation,
                     j * stride:j * stride + dilation * (k - 1) + 1:dilation]
            out[:, :, i, j] = reduce(win, axis=(2, 3))
    return out


def _np_batch_norm(x, mean, var, w, b, eps):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * w.reshape(shape) + b.reshape(shape)


def _batch_stats(x):
    axes = (0,) + tuple(range(2, x.ndim))
    return x.mean(axis=axes), x.var(axis=axes), x.var(axis=axes, ddof=1)


# -- Linear, Identity, Flatten ----------------------------------------------------------------------


def test_linear_shapes_and_default_init_bounds():
    nx.manual_seed(0)
    lin = nn.Linear(50, 40)
    assert lin.weight.shape == (40, 50) and lin.bias.shape == (40,)
    assert lin.weight.dtype == nx.float32
    bound = 1 / math.sqrt(50)
    for p in (lin.weight, lin.bias):
        a = p.numpy()
        assert np.abs(a).max() <= bound and np.abs(a).max() > 0.9 * bound
    assert abs(lin.weight.numpy().std() - bound / math.sqrt(3)) < 0.1 * bound


@pytest.mark.parametrize("in_shape", [(5, 3), (2, 4, 3), (3,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_values(in_shape, bias):
    lin = nn.Linear(3, 4, bias=bias).double()
    x = _rand(*in_shape)
    p = _np_params(lin)
    want = x @ p["weight"].T + (p["bias"] if bias else 0)
    np.testing.assert_allclose(lin(_t(x)).numpy(), want, rtol=1e-12)
    assert (lin.bias is None) != bias
    assert [n for n, _ in lin.named_parameters()] == (["weight", "bias"] if bias else ["weight"])


def test_linear_dtype_argument():
    lin = nn.Linear(2, 3, dtype=nx.float64)
    assert lin.weight.dtype == nx.float64 and lin.bias.dtype == nx.float64


@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradients(bias):
    _gradcheck_module(nn.Linear(3, 2, bias=bias), _rand(4, 3))


def test_identity_and_flatten():
    x = _rand(2, 3, 4, 5)
    np.testing.assert_array_equal(nn.Identity(7, foo=1)(_t(x)).numpy(), x)
    np.testing.assert_array_equal(nn.Flatten()(_t(x)).numpy(), x.reshape(2, -1))
    np.testing.assert_array_equal(nn.Flatten(0, 1)(_t(x)).numpy(), x.reshape(6, 4, 5))
    np.testing.assert_array_equal(nn.Flatten(2)(_t(x)).numpy(), x.reshape(2, 3, 20))
    np.testing.assert_array_equal(nn.Flatten(1, 2)(_t(x)).numpy(), x.reshape(2, 12, 5))


# -- Conv2d -----------------------------------------------------------------------------------------

CONV_CONFIGS = {
    "plain": dict(in_channels=2, out_channels=3, kernel_size=3),
    "stride": dict(in_channels=2, out_channels=3, kernel_size=2, stride=2),
    "padding": dict(in_channels=2, out_channels=2, kernel_size=3, padding=1),
    "dilation": dict(in_channels=1, out_channels=2, kernel_size=2, dilation=2),
    "groups": dict(in_channels=4, out_channels=6, kernel_size=2, groups=2),
    "depthwise": dict(in_channels=3, out_channels=3, kernel_size=3, padding=1, groups=3),
    "no_bias": dict(in_channels=2, out_channels=3, kernel_size=2, bias=False),
    "rect_all": dict(in_channels=2, out_channels=4, kernel_size=(2, 3), stride=(2, 1), padding=(1, 2),
                     dilation=(1, 2), groups=2),
}


def _pair(v):
    return tuple(v) if isinstance(v, tuple) else (v, v)


@pytest.mark.parametrize("name", CONV_CONFIGS)
def test_conv2d_values(name):
    cfg = CONV_CONFIGS[name]
    conv = nn.Conv2d(**cfg).double()
    x = _rand(2, cfg["in_channels"], 7, 6)
    p = _np_params(conv)
    want = _np_conv2d(x, p["weight"], p.get("bias"), _pair(cfg.get("stride", 1)), _pair(cfg.get("padding", 0)),
                      _pair(cfg.get("dilation", 1)), cfg.get("groups", 1))
    got = conv(_t(x)).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["stride", "groups", "no_bias", "rect_all"])
def test_conv2d_gradients(name):
    cfg = CONV_CONFIGS[name]
    _gradcheck_module(nn.Conv2d(**cfg), _rand(1, cfg["in_channels"], 5, 4))


def test_conv2d_weight_shape_and_init_bounds():
    nx.manual_seed(0)
    conv = nn.Conv2d(8, 6, (3, 2), groups=2)
    assert conv.weight.shape == (6, 4, 3, 2) and conv.bias.shape == (6,)
    bound = 1 / math.sqrt(4 * 3 * 2)
    assert np.abs(conv.weight.numpy()).max() <= bound and np.abs(conv.bias.numpy()).max() <= bound
    assert np.abs(conv.weight.numpy()).max() > 0.8 * bound


def test_conv2d_errors():
    with pytest.raises(ValueError, match="groups"):
        nn.Conv2d(3, 4, 2, groups=2)
    conv = nn.Conv2d(3, 4, 2)
    with pytest.raises(ShapeError, match="channels"):
        conv(nx.ones(1, 2, 4, 4))
    with pytest.raises(ShapeError):
        conv(nx.ones(3, 4, 4))


# -- pooling ----------------------------------------------------------------------------------------

POOL_CONFIGS = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=1),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=2, stride=1, padding=1),
]


@pytest.mark.parametrize("cfg", POOL_CONFIGS + [dict(kernel_size=2, stride=1, dilation=2)], ids=str)
def test_max_pool2d_values(cfg):
    x = _rand(2, 3, 6, 7)
    k = cfg["kernel_size"]
    want = _np_pool(x, k, cfg.get("stride") or k, cfg.get("padding", 0), cfg.get("dilation", 1), np.max, -np.inf)
    np.testing.assert_array_equal(nn.MaxPool2d(**cfg)(_t(x)).numpy(), want)


@pytest.mark.parametrize("cfg", POOL_CONFIGS, ids=str)
def test_avg_pool2d_values(cfg):
    x = _rand(2, 3, 6, 7)
    k = cfg["kernel_size"]
    want = _np_pool(x, k, cfg.get("stride") or k, cfg.get("padding", 0), 1, np.mean, 0.0)
    np.testing.assert_allclose(nn.AvgPool2d(**cfg)(_t(x)).numpy(), want, rtol=1e-12)


@pytest.mark.parametrize("layer", [nn.MaxPool2d(2), nn.AvgPool2d(3, 2, 1)], ids=["max", "avg"])
def test_pool_unbatched_input_and_gradients(layer):
    x = _rand(1, 2, 5, 5, seed=3)
    np.testing.assert_allclose(layer(_t(x[0])).numpy(), layer(_t(x)).numpy()[0])
    _gradcheck_module(layer, x)


# -- activations ------------------------------------------------------------------------------------


def _np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


ACTIVATIONS = {
    "relu": (nn.ReLU(), lambda x: np.maximum(x, 0)),
    "sigmoid": (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    "tanh": (nn.Tanh(), np.tanh),
    "softmax_last": (nn.Softmax(dim=-1), lambda x: _np_softmax(x, -1)),
    "softmax_dim1": (nn.Softmax(dim=1), lambda x: _np_softmax(x, 1)),
    "log_softmax": (nn.LogSoftmax(dim=1), lambda x: np.log(_np_softmax(x, 1))),
}


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_values_and_gradients(name):
    layer, ref = ACTIVATIONS[name]
    x = _rand(3, 4, 2)
    np.testing.assert_allclose(layer(_t(x)).numpy(), ref(x), rtol=1e-10, atol=1e-12)
    gradcheck(layer, [_t(x, requires_grad=True)])


@pytest.mark.parametrize("layer,fn,ref", [(nn.Softmax, F.softmax, _np_softmax),
                                           (nn.LogSoftmax, F.log_softmax, lambda x, a: np.log(_np_softmax(x, a)))],
                         ids=["softmax", "log_softmax"])
def test_softmax_dim_none_is_pytorchs_implicit_choice_or_refused(layer, fn, ref):
    # PyTorch's default dim=None takes dim 0 for 0-, 1- and 3-D inputs, else 1 (with a deprecation warning)
    assert layer().dim is None
    for shape in [(), (5,), (3, 4)]:
        x = _rand(*shape)
        for call in (layer(), fn, lambda t: fn(input=t)):
            with pytest.warns(UserWarning, match="Implicit dimension choice"):
                out = call(_t(x))
            np.testing.assert_allclose(out.numpy(), ref(x, 0 if len(shape) < 2 else 1), rtol=1e-12)
    for shape, pytorch_dim in [((2, 3, 4), 0), ((2, 3, 4, 5), 1)]:  # where neurenix's old default (-1) differs
        for call in (layer(), lambda t: fn(t), lambda t: fn(t, None)):
            with pytest.raises(ValueError, match=f"dim=None on a {len(shape)}-D input .* takes dim {pytorch_dim}"):
                call(_t(_rand(*shape)))
    x = _rand(2, 3, 4)
    np.testing.assert_allclose(layer(dim=0)(_t(x)).numpy(), ref(x, 0), rtol=1e-12)
    np.testing.assert_allclose(fn(input=_t(x), dim=-1).numpy(), ref(x, -1), rtol=1e-12)


# -- Dropout ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_training(p):
    nx.manual_seed(0)
    x = nx.ones(200, 100, dtype=nx.float64, requires_grad=True)
    out = nn.Dropout(p)(x)
    a = out.numpy()
    dropped = (a == 0).mean()
    assert abs(dropped - p) < 0.02
    np.testing.assert_allclose(a[a != 0], 1 / (1 - p), rtol=1e-12)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), a)


def test_dropout_is_seeded():
    x = nx.ones(10, 10)
    nx.manual_seed(7)
    a = nn.Dropout()(x).numpy()
    b = nn.Dropout()(x).numpy()
    nx.manual_seed(7)
    np.testing.assert_array_equal(nn.Dropout()(x).numpy(), a)
    assert not np.array_equal(a, b)


def test_dropout_eval_and_edge_probabilities():
    x = _t(_rand(4, 5))
    drop = nn.Dropout(0.5).eval()
    np.testing.assert_array_equal(drop(x).numpy(), x.numpy())
    np.testing.assert_array_equal(nn.Dropout(0.0)(x).numpy(), x.numpy())
    assert not nn.Dropout(1.0)(x).numpy().any()
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="probability"):
            nn.Dropout(bad)


# -- BatchNorm --------------------------------------------------------------------------------------

BN_CASES = [(nn.BatchNorm1d, (6, 3)), (nn.BatchNorm1d, (4, 3, 5)), (nn.BatchNorm2d, (4, 3, 2, 3))]
BN_IDS = ["1d", "1d_seq", "2d"]


def _bn(cls, **kw):
    bn = cls(3, **kw).double()
    if bn.affine:
        with nx.no_grad():
            bn.weight.copy_(_t([0.5, 1.5, -1.0]))
            bn.bias.copy_(_t([0.1, -0.2, 0.3]))
    return bn


@pytest.mark.parametrize("cls,shape", BN_CASES, ids=BN_IDS)
def test_batch_norm_training_uses_batch_stats_and_updates_running_stats(cls, shape):
    momentum, eps = 0.3, 1e-3
    bn = _bn(cls, momentum=momentum, eps=eps)
    w, b = bn.weight.numpy().copy(), bn.bias.numpy().copy()
    run_mean, run_var = np.zeros(3), np.ones(3)
    for step in range(1, 4):
        x = _rand(*shape, seed=step) * 2 + step
        mean, var, var_unbiased = _batch_stats(x)
        np.testing.assert_allclose(bn(_t(x)).numpy(), _np_batch_norm(x, mean, var, w, b, eps), rtol=1e-10,
                                   atol=1e-12)
        run_mean = (1 - momentum) * run_mean + momentum * mean
        run_var = (1 - momentum) * run_var + momentum * var_unbiased
        np.testing.assert_allclose(bn.running_mean.numpy(), run_mean, rtol=1e-12)
        np.testing.assert_allclose(bn.running_var.numpy(), run_var, rtol=1e-12)
        assert bn.num_batches_tracked.item() == step


@pytest.mark.parametrize("cls,shape", BN_CASES, ids=BN_IDS)
def test_batch_norm_eval_uses_running_stats(cls, shape):
    bn = _bn(cls)
    bn(_t(_rand(*shape, seed=1) + 3))
    bn.eval()
    mean, var = bn.running_mean.numpy().copy(), bn.running_var.numpy().copy()
    x = _rand(*shape, seed=2)
    want = _np_batch_norm(x, mean, var, bn.weight.numpy(), bn.bias.numpy(), bn.eps)
    np.testing.assert_allclose(bn(_t(x)).numpy(), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(bn.running_mean.numpy(), mean)
    assert bn.num_batches_tracked.item() == 1


@pytest.mark.parametrize("cls,shape", BN_CASES, ids=BN_IDS)
def test_batch_norm_without_running_stats(cls, shape):
    bn = _bn(cls, track_running_stats=False)
    assert bn.running_mean is None and bn.running_var is None and bn.num_batches_tracked is None
    assert list(bn.state_dict()) == ["weight", "bias"]
    x = _rand(*shape)
    mean, var, _ = _batch_stats(x)
    want = _np_batch_norm(x, mean, var, bn.weight.numpy(), bn.bias.numpy(), bn.eps)
    for mode in (True, False):
        np.testing.assert_allclose(bn.train(mode)(_t(x)).numpy(), want, rtol=1e-10, atol=1e-12)


def test_batch_norm_without_affine():
    bn = nn.BatchNorm2d(3, affine=False).double()
    assert list(bn.parameters()) == []
    x = _rand(2, 3, 2, 2)
    mean, var, _ = _batch_stats(x)
    np.testing.assert_allclose(bn(_t(x)).numpy(), _np_batch_norm(x, mean, var, np.ones(3), np.zeros(3), 1e-5),
                               rtol=1e-10)


@pytest.mark.parametrize("cls,shape", BN_CASES, ids=BN_IDS)
def test_batch_norm_gradients(cls, shape):
    _gradcheck_module(_bn(cls), _rand(*shape))


@pytest.mark.parametrize("cls,shape", [(nn.BatchNorm1d, (4, 2)), (nn.BatchNorm1d, (4, 3, 2, 2)),
                                       (nn.BatchNorm2d, (4, 2, 2, 2)), (nn.BatchNorm2d, (4, 3, 2))],
                         ids=["1d_channels", "1d_ndim", "2d_channels", "2d_ndim"])
def test_batch_norm_wrong_input_raises_shape_error(cls, shape):
    bn = cls(3)
    with pytest.raises(ShapeError, match=r"3.*" + re.escape(str(shape))):
        bn(nx.ones(*shape))
    assert bn.num_batches_tracked.item() == 0


def test_batch_norm_single_value_per_channel_in_training_raises():
    with pytest.raises(ValueError, match="more than one value"):
        nn.BatchNorm1d(3)(nx.ones(1, 3))


def test_max_pool2d_gradient_goes_to_the_first_maximum():
    # ties (common after a ReLU) give the whole gradient to the first maximum of each window, as PyTorch does
    x = nx.tensor([[[[1.0, 3.0, 0.0, 0.0], [3.0, 2.0, 0.0, 0.0]]]], requires_grad=True)
    nn.functional.max_pool2d(x, 2).sum().backward()
    assert x.grad.numpy()[0, 0].tolist() == [[0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]


def _block(pool=None, bn=None):
    """Conv, BatchNorm2d, ReLU, pool: the end of a Conv-4 block, which Sequential runs as one op."""
    nx.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), bn or nn.BatchNorm2d(3), nn.ReLU(),
                         pool or nn.MaxPool2d(2), nn.Flatten()).double()


def _one_by_one(seq, x):
    for m in seq:
        x = m(x)
    return x


@pytest.fixture
def fused_calls(monkeypatch):
    """How many times the fused kernel ran."""
    kernels, calls = nx.device("cpu").kernels, []
    fn = kernels.batch_norm_relu_pool
    monkeypatch.setattr(kernels, "batch_norm_relu_pool", lambda *a: calls.append(1) or fn(*a))
    return calls


@pytest.mark.parametrize("hw", [(4, 4), (5, 7)], ids=str)
def test_sequential_fuses_batch_norm_relu_pool(hw, fused_calls):
    """The fused block gives what its layers give one by one: output, gradients, running statistics."""
    fused, layers = _block(), _block()
    x = _rand(4, 2, *hw)
    a, b = fused(_t(x, True)), _one_by_one(layers, _t(x, True))
    assert len(fused_calls) == 1
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-12)
    g = _t(_rand(*a.shape, seed=1))
    (a * g).sum().backward()
    (b * g).sum().backward()
    for (name, p), q in zip(fused.named_parameters(), layers.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_allclose(getattr(fused[1], name).numpy(), getattr(layers[1], name).numpy(), rtol=1e-12)


def test_fused_block_gradients_first_and_second_order(fused_calls):
    """Input and parameter gradients of the fused block against finite differences, and their gradients."""
    block = _block()
    names = [n for n, _ in block.named_parameters()]
    params = [p.detach().requires_grad_() for p in block.parameters()]

    def fn(inp, *ps):
        return functional_call(block, dict(zip(names, ps)), inp)

    x = _t(_rand(3, 2, 4, 4), True)
    assert gradcheck(fn, [x, *params])
    assert gradgradcheck(fn, [x, *params])
    assert fused_calls


@pytest.mark.parametrize("pool", [nn.MaxPool2d(2, stride=1), nn.MaxPool2d(3), nn.MaxPool2d(2, padding=1),
                                  nn.MaxPool2d(2, ceil_mode=False, dilation=2)], ids=repr)
def test_other_pools_are_not_fused(pool, fused_calls):
    block = _block(pool)
    x = _t(_rand(4, 2, 6, 6))
    np.testing.assert_array_equal(block(x).numpy(), _one_by_one(_block(pool), x).numpy())
    assert not fused_calls


def test_running_statistics_in_eval_are_not_fused(fused_calls):
    """In eval mode the layer normalises with its running statistics: the layers run one by one."""
    block = _block().eval()
    x = _t(_rand(4, 2, 4, 4))
    np.testing.assert_array_equal(block(x).numpy(), _one_by_one(_block().eval(), x).numpy())
    assert not fused_calls
    block.train()[1].track_running_stats = False  # no running statistics: batch statistics in either mode
    block.eval()(x)
    assert len(fused_calls) == 1


def test_fused_block_refuses_what_its_layers_refuse():
    """Inputs the fused op does not take reach the layers, which name the problem and count the batches they
    count one by one."""
    block, layers = (nn.Sequential(nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2)) for _ in range(2))
    for x, error, match in ((nx.ones(2, 4, 4, 4), ShapeError, "3 channels"),
                            (nx.ones(1, 3, 1, 1), ValueError, "more than one value"),
                            (nx.ones(2, 3, 1, 4), ValueError, "max_pool2d")):
        for run in (block, lambda x: _one_by_one(layers, x)):
            with pytest.raises(error, match=match):
                run(x)
    assert block[0].num_batches_tracked.item() == layers[0].num_batches_tracked.item() == 2
