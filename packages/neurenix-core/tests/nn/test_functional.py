import re

import numpy as np
import pytest

import neurenix as nx
from neurenix import nn
from neurenix.errors import DTypeError, ShapeError
from neurenix.nn import functional as F

REDUCE = {"mean": np.mean, "sum": np.sum, "none": lambda a: a}


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _t(a, requires_grad=False):
    return nx.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def _labels(n, c, *rest, seed=0):
    return np.random.default_rng(seed).integers(0, c, (n, *rest))


def _one_hot(labels, c):
    """(N, ...) class indices -> (N, C, ...) one-hot, class on axis 1."""
    return np.moveaxis(np.eye(c)[labels], -1, 1)


def _np_log_softmax(x, axis=1):
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _np_nll(logp, labels):
    return -np.take_along_axis(logp, labels[:, None], axis=1)[:, 0]


def _shape(shape):
    return re.escape(str(shape))


# -- cross_entropy ----------------------------------------------------------------------------------

CE_SHAPES = [(5, 4), (3, 4, 2), (2, 3, 2, 2)]


@pytest.mark.parametrize("shape", CE_SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCE)
def test_cross_entropy_indices_and_one_hot_agree_with_numpy(shape, reduction):
    x = _rand(*shape)
    labels = _labels(shape[0], shape[1], *shape[2:])
    want = REDUCE[reduction](_np_nll(_np_log_softmax(x), labels))
    by_index = F.cross_entropy(_t(x), nx.tensor(labels), reduction=reduction)
    by_one_hot = F.cross_entropy(_t(x), _t(_one_hot(labels, shape[1])), reduction=reduction)
    np.testing.assert_allclose(by_index.numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(by_one_hot.numpy(), want, rtol=1e-12)


def test_cross_entropy_soft_targets():
    x = _rand(4, 3)
    q = np.random.default_rng(1).dirichlet(np.ones(3), size=4)
    want = -(q * _np_log_softmax(x)).sum(1).mean()
    np.testing.assert_allclose(F.cross_entropy(_t(x), _t(q)).item(), want, rtol=1e-12)


def test_cross_entropy_float32_one_hot_targets():
    x = _rand(4, 3).astype(np.float32)
    labels = _labels(4, 3)
    got = F.cross_entropy(nx.tensor(x), nx.tensor(np.eye(3, dtype=np.float32)[labels]))
    np.testing.assert_allclose(got.item(), _np_nll(_np_log_softmax(x.astype(np.float64)), labels).mean(), rtol=1e-5)


def test_cross_entropy_is_stable_for_large_logits():
    x = np.array([[1000.0, 0.0, -1000.0], [0.0, 800.0, 0.0]])
    labels = np.array([2, 1])
    got = F.cross_entropy(_t(x), nx.tensor(labels), reduction="none").numpy()
    np.testing.assert_allclose(got, [2000.0, 0.0], atol=1e-9)


@pytest.mark.parametrize("eps", [0.1, 0.3])
@pytest.mark.parametrize("targets", ["indices", "one_hot"])
def test_cross_entropy_label_smoothing(eps, targets):
    n, c = 5, 4
    x = _rand(n, c)
    labels = _labels(n, c)
    logp = _np_log_softmax(x)
    want = ((1 - eps) * _np_nll(logp, labels) + eps / c * -logp.sum(1)).mean()
    target = nx.tensor(labels) if targets == "indices" else _t(np.eye(c)[labels])
    xt = _t(x, requires_grad=True)
    loss = F.cross_entropy(xt, target, label_smoothing=eps)
    np.testing.assert_allclose(loss.item(), want, rtol=1e-12)
    loss.backward()
    q = (1 - eps) * np.eye(c)[labels] + eps / c
    np.testing.assert_allclose(xt.grad.numpy(), (np.exp(logp) - q) / n, rtol=1e-10, atol=1e-14)


def test_cross_entropy_module_matches_functional():
    x, labels = _t(_rand(4, 3)), nx.tensor(_labels(4, 3))
    for kw in (dict(), dict(reduction="sum"), dict(label_smoothing=0.2)):
        np.testing.assert_allclose(nn.CrossEntropyLoss(**kw)(x, labels).numpy(),
                                   F.cross_entropy(x, labels, **kw).numpy())


def test_cross_entropy_errors():
    x = nx.zeros(4, 3)
    with pytest.raises(ShapeError, match=r"\(4,\).*" + _shape((4, 1))):
        F.cross_entropy(x, nx.zeros(4, 1, dtype=nx.int64))
    with pytest.raises(ShapeError, match=_shape((4, 3)) + r".*" + _shape((4, 2))):
        F.cross_entropy(x, nx.zeros(4, 2))
    with pytest.raises(ShapeError):
        F.cross_entropy(nx.zeros(3), nx.tensor([0, 1, 2]))
    with pytest.raises(DTypeError, match="int64.*bool"):
        F.cross_entropy(x, nx.tensor([True, False, True, False]))


@pytest.mark.parametrize("bad", [3, 7, -1])
@pytest.mark.parametrize("fn", [F.cross_entropy, F.nll_loss], ids=["cross_entropy", "nll_loss"])
def test_class_index_out_of_range_names_index_and_count(fn, bad):
    with pytest.raises(IndexError, match=rf"(?s)3 classes.*index {bad} is out of range"):
        fn(nx.zeros(4, 3), nx.tensor([0, 1, bad, 2]))


# -- nll_loss ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", CE_SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCE)
def test_nll_loss(shape, reduction):
    logp = _np_log_softmax(_rand(*shape))
    labels = _labels(shape[0], shape[1], *shape[2:])
    want = REDUCE[reduction](_np_nll(logp, labels))
    np.testing.assert_allclose(F.nll_loss(_t(logp), nx.tensor(labels), reduction).numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(nn.NLLLoss(reduction)(_t(logp), nx.tensor(labels)).numpy(), want, rtol=1e-12)


def test_nll_loss_errors():
    with pytest.raises(DTypeError, match="int64"):
        F.nll_loss(nx.zeros(4, 3), nx.zeros(4))
    with pytest.raises(ShapeError, match=_shape((4, 3)) + r".*" + _shape((3,))):
        F.nll_loss(nx.zeros(4, 3), nx.tensor([0, 1, 2]))


# -- regression losses ------------------------------------------------------------------------------

REGRESSION = {
    "mse": (F.mse_loss, nn.MSELoss, lambda a, b: (a - b) ** 2),
    "l1": (F.l1_loss, nn.L1Loss, lambda a, b: np.abs(a - b)),
}


@pytest.mark.parametrize("name", REGRESSION)
@pytest.mark.parametrize("reduction", REDUCE)
def test_regression_losses(name, reduction):
    fn, cls, ref = REGRESSION[name]
    a, b = _rand(3, 4), _rand(3, 4, seed=1)
    want = REDUCE[reduction](ref(a, b))
    np.testing.assert_allclose(fn(_t(a), _t(b), reduction=reduction).numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(cls(reduction)(_t(a), _t(b)).numpy(), want, rtol=1e-12)


@pytest.mark.parametrize("fn", [F.mse_loss, F.l1_loss, F.binary_cross_entropy_with_logits, F.binary_cross_entropy,
                                F.smooth_l1_loss, F.huber_loss, F.kl_div],
                         ids=["mse", "l1", "bce_logits", "bce", "smooth_l1", "huber", "kl_div"])
def test_shape_mismatch_names_both_shapes(fn):
    with pytest.raises(ShapeError, match=_shape((4, 1)) + r".*" + _shape((4,))):
        fn(nx.zeros(4, 1), nx.zeros(4))


def test_mse_loss_gradient():
    a, b = _rand(3, 2), _rand(3, 2, seed=1)
    at = _t(a, requires_grad=True)
    F.mse_loss(at, _t(b)).backward()
    np.testing.assert_allclose(at.grad.numpy(), 2 * (a - b) / a.size, rtol=1e-12)


# -- binary_cross_entropy_with_logits ---------------------------------------------------------------


def _np_bce_logits(x, t):
    return np.logaddexp(0.0, x) - t * x


@pytest.mark.parametrize("reduction", REDUCE)
def test_bce_with_logits_values(reduction):
    x = _rand(4, 3) * 3
    t = np.random.default_rng(1).random((4, 3))
    got = F.binary_cross_entropy_with_logits(_t(x), _t(t), reduction=reduction)
    np.testing.assert_allclose(got.numpy(), REDUCE[reduction](_np_bce_logits(x, t)), rtol=1e-12)


def test_bce_with_logits_stable_for_large_logits():
    x = np.array([1000.0, -1000.0, 100.0, -100.0, 40.0, -40.0])
    t = np.array([1.0, 0.0, 0.0, 1.0, 0.5, 0.5])
    xt = _t(x, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(xt, _t(t), reduction="sum")
    loss.backward()
    assert np.isfinite(loss.item())
    np.testing.assert_allclose(loss.item(), _np_bce_logits(x, t).sum(), rtol=1e-12)
    np.testing.assert_allclose(xt.grad.numpy(), 0.5 * (1 + np.tanh(x / 2)) - t, atol=1e-12)


# -- one_hot ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5,), (2, 3), ()], ids=str)
def test_one_hot(shape):
    labels = np.random.default_rng(0).integers(0, 4, shape)
    got = F.one_hot(nx.tensor(labels), 6)
    assert got.dtype == nx.int64 and got.shape == shape + (6,)
    np.testing.assert_array_equal(got.numpy(), np.eye(6, dtype=np.int64)[labels])


def test_one_hot_infers_num_classes():
    got = F.one_hot(nx.tensor([1, 3, 0]))
    np.testing.assert_array_equal(got.numpy(), np.eye(4, dtype=np.int64)[[1, 3, 0]])


def test_one_hot_errors():
    with pytest.raises(IndexError, match=r"3 classes: index 5 is out of range"):
        F.one_hot(nx.tensor([0, 5]), 3)
    with pytest.raises(DTypeError):
        F.one_hot(nx.tensor([0.0, 1.0]), 2)


# -- reductions and the rest ------------------------------------------------------------------------

LOSSES = {
    "cross_entropy": lambda r: F.cross_entropy(nx.zeros(2, 3), nx.tensor([0, 1]), reduction=r),
    "nll_loss": lambda r: F.nll_loss(nx.zeros(2, 3), nx.tensor([0, 1]), reduction=r),
    "mse_loss": lambda r: F.mse_loss(nx.zeros(2), nx.zeros(2), reduction=r),
    "l1_loss": lambda r: F.l1_loss(nx.zeros(2), nx.zeros(2), reduction=r),
    "bce_logits": lambda r: F.binary_cross_entropy_with_logits(nx.zeros(2), nx.zeros(2), reduction=r),
    "bce": lambda r: F.binary_cross_entropy(nx.zeros(2), nx.zeros(2), reduction=r),
    "smooth_l1_loss": lambda r: F.smooth_l1_loss(nx.zeros(2), nx.zeros(2), reduction=r),
    "huber_loss": lambda r: F.huber_loss(nx.zeros(2), nx.zeros(2), reduction=r),
    "kl_div": lambda r: F.kl_div(nx.zeros(2), nx.zeros(2), reduction=r),
}


@pytest.mark.parametrize("name", LOSSES)
def test_invalid_reduction(name):
    with pytest.raises(ValueError, match="reduction.*'avg'"):
        LOSSES[name]("avg")


@pytest.mark.filterwarnings("ignore:kl_div. reduction='mean'")
@pytest.mark.parametrize("name", LOSSES)
def test_reduction_shapes(name):
    assert LOSSES[name]("mean").shape == () and LOSSES[name]("sum").shape == ()
    assert LOSSES[name]("none").shape == (2,)


def test_batch_norm_eval_needs_running_stats():
    with pytest.raises(ValueError, match="running_mean"):
        F.batch_norm(nx.ones(2, 3), None, None, training=False)


def test_functional_dropout():
    x = _t(_rand(3, 3))
    assert F.dropout(x, 0.5, training=False) is x
    with pytest.raises(ValueError, match="probability"):
        F.dropout(x, 2.0)
