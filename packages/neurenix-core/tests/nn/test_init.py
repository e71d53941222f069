import inspect
import math

import numpy as np
import pytest

import neurenix as nx
from neurenix import nn
from neurenix.nn import init

SHAPES = {"linear": (300, 200), "conv": (64, 16, 3, 3)}


def _fans(shape):
    receptive = int(np.prod(shape[2:]))
    return shape[1] * receptive, shape[0] * receptive


def _param(shape, dtype=nx.float32):
    return nn.Parameter(nx.zeros(*shape, dtype=dtype))


def _check_uniform(a, bound):
    assert np.abs(a).max() <= bound and np.abs(a).max() > 0.99 * bound
    assert abs(a.mean()) < 0.02 * bound
    assert a.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)


def _check_normal(a, std):
    assert abs(a.mean()) < 0.02 * std
    assert a.std() == pytest.approx(std, rel=0.02)
    assert np.abs(a).max() > 3 * std


@pytest.mark.parametrize("kind", SHAPES)
@pytest.mark.parametrize("gain", [1.0, 5 / 3])
def test_xavier(kind, gain):
    nx.manual_seed(0)
    shape = SHAPES[kind]
    fan_in, fan_out = _fans(shape)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    _check_uniform(init.xavier_uniform_(_param(shape), gain).numpy(), std * math.sqrt(3))
    _check_normal(init.xavier_normal_(_param(shape), gain).numpy(), std)


KAIMING = [
    dict(),
    dict(nonlinearity="relu"),
    dict(a=0.2, mode="fan_out"),
    dict(a=math.sqrt(5)),
    dict(mode="fan_out", nonlinearity="tanh"),
]


@pytest.mark.parametrize("kind", SHAPES)
@pytest.mark.parametrize("kw", KAIMING, ids=str)
def test_kaiming(kind, kw):
    nx.manual_seed(1)
    shape = SHAPES[kind]
    fan_in, fan_out = _fans(shape)
    fan = fan_out if kw.get("mode") == "fan_out" else fan_in
    nonlinearity = kw.get("nonlinearity", "leaky_relu")
    a = kw.get("a", 0.0)
    gain = {"relu": math.sqrt(2.0), "tanh": 5 / 3, "leaky_relu": math.sqrt(2.0 / (1 + a * a))}[nonlinearity]
    std = gain / math.sqrt(fan)
    _check_uniform(init.kaiming_uniform_(_param(shape), **kw).numpy(), std * math.sqrt(3))
    _check_normal(init.kaiming_normal_(_param(shape), **kw).numpy(), std)


@pytest.mark.parametrize("fn", [init.xavier_uniform_, init.xavier_normal_, init.kaiming_uniform_,
                                init.kaiming_normal_, lambda t: init.uniform_(t, -2, 3),
                                lambda t: init.normal_(t, 1.0, 0.5)],
                         ids=["xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "uniform",
                              "normal"])
def test_initializers_are_seeded_in_place_and_keep_dtype(fn):
    p = _param((4, 5), nx.float64)
    nx.manual_seed(3)
    assert fn(p) is p
    first = p.numpy().copy()
    nx.manual_seed(3)
    fn(p)
    np.testing.assert_array_equal(p.numpy(), first)
    assert p.dtype == nx.float64 and p.requires_grad and p.is_leaf and first.any()


def test_uniform_and_normal_parameters():
    nx.manual_seed(0)
    a = init.uniform_(nx.zeros(100_000), -2.0, 3.0).numpy()
    assert a.min() >= -2.0 and a.max() < 3.0 and a.mean() == pytest.approx(0.5, abs=0.02)
    b = init.normal_(nx.zeros(100_000), 1.0, 0.5).numpy()
    assert b.mean() == pytest.approx(1.0, abs=0.01) and b.std() == pytest.approx(0.5, rel=0.02)


@pytest.mark.parametrize("name,param,want", [
    ("linear", None, 1.0), ("identity", None, 1.0), ("sigmoid", None, 1.0),
    ("conv1d", None, 1.0), ("conv2d", None, 1.0), ("conv3d", None, 1.0),
    ("conv_transpose1d", None, 1.0), ("conv_transpose2d", None, 1.0), ("conv_transpose3d", None, 1.0),
    ("tanh", None, 5 / 3), ("relu", None, math.sqrt(2.0)), ("selu", None, 0.75),
    ("leaky_relu", None, math.sqrt(2.0 / (1 + 0.01 ** 2))), ("leaky_relu", 0.2, math.sqrt(2.0 / 1.04)),
])
def test_calculate_gain(name, param, want):
    assert init.calculate_gain(name, param) == pytest.approx(want, rel=1e-12)


def test_calculate_gain_unknown():
    with pytest.raises(ValueError, match="'swish'"):
        init.calculate_gain("swish")


@pytest.mark.parametrize("fn,value", [(init.zeros_, 0.0), (init.ones_, 1.0),
                                      (lambda t: init.constant_(t, -2.5), -2.5)], ids=["zeros", "ones", "constant"])
@pytest.mark.parametrize("dtype", [nx.float32, nx.float64])
def test_fill(fn, value, dtype):
    p = nn.Parameter(nx.randn(3, 4, dtype=dtype))
    assert fn(p) is p
    assert p.dtype == dtype and p.shape == (3, 4) and p.requires_grad and p.is_leaf
    np.testing.assert_array_equal(p.numpy(), np.full((3, 4), value))


def test_errors():
    with pytest.raises(ValueError, match="2 dimensions"):
        init.xavier_uniform_(nx.zeros(5))
    with pytest.raises(ValueError, match="'fan_avg'"):
        init.kaiming_uniform_(nx.zeros(3, 3), mode="fan_avg")
    with pytest.raises(TypeError, match="constant_: tensor must be a Tensor"):
        init.constant_([1.0], 0.0)


INITS = ["uniform_", "normal_", "constant_", "zeros_", "ones_", "xavier_uniform_", "xavier_normal_",
         "kaiming_uniform_", "kaiming_normal_", "calculate_gain"]


@pytest.mark.parametrize("name", INITS)
def test_parameter_names_and_order_are_pytorchs(name):
    torch_init = pytest.importorskip("torch.nn.init")
    ours, theirs = (inspect.signature(getattr(m, name)).parameters for m in (init, torch_init))
    assert [(p, ours[p].kind) for p in ours] == [(p, theirs[p].kind) for p in theirs]


def test_keyword_calls_written_for_pytorch():
    w = nx.zeros(2, 3)
    assert init.constant_(tensor=w, val=0.5).tolist() == [[0.5] * 3] * 2
    init.uniform_(tensor=w, a=1.0, b=1.0)
    init.normal_(tensor=w, mean=2.0, std=0.0)
    assert init.zeros_(tensor=w) is w and init.ones_(tensor=w).sum().item() == 6
    init.xavier_uniform_(tensor=w, gain=2.0)
    init.kaiming_normal_(tensor=w, a=0.1, mode="fan_out", nonlinearity="leaky_relu")
    assert init.calculate_gain(nonlinearity="leaky_relu", param=0.2) == pytest.approx(math.sqrt(2 / 1.04))


@pytest.mark.parametrize("fn", [init.uniform_, init.normal_, init.xavier_uniform_, init.xavier_normal_,
                                init.kaiming_uniform_, init.kaiming_normal_], ids=lambda f: f.__name__)
def test_generator_draws_from_the_given_numpy_generator(fn):
    nx.manual_seed(0)
    a = fn(nx.zeros(4, 5), generator=np.random.default_rng(7)).numpy()
    b = fn(nx.zeros(4, 5), generator=np.random.default_rng(7)).numpy()
    np.testing.assert_array_equal(a, b)
    state = nx.random.get_rng_state()
    fn(nx.zeros(4, 5), generator=np.random.default_rng(7))
    assert nx.random.get_rng_state() == state  # neurenix's own generator is left alone
    with pytest.raises(TypeError, match=f"{fn.__name__}: generator must be a neurenix.Generator"):
        fn(nx.zeros(4, 5), generator=object())
