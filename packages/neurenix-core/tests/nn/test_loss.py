"""The probability, robust-regression and divergence losses (functional forms and modules) against NumPy in
float64 and float32, their gradients to second order, and their edge cases and errors. (cross_entropy, nll,
mse and l1: test_functional.py, which also checks every loss's reduction names and shapes.)"""

import math
import re
import warnings

import numpy as np
import pytest

import neurenix as nx
from neurenix import nn
from neurenix.errors import ShapeError
from neurenix.nn import functional as F
from neurenix.testing import gradcheck, gradgradcheck

SHAPE = (3, 4)
REDUCE = {"mean": np.mean, "sum": np.sum, "none": lambda a: a}
DTYPES = {"float64": (nx.float64, 1e-12), "float32": (nx.float32, 2e-6)}


def _rng(seed):
    return np.random.default_rng(seed)


def _normal(seed=0, shape=SHAPE):
    return _rng(seed).standard_normal(shape)


def _probs(seed=0, shape=SHAPE):
    return _rng(seed).uniform(0.05, 0.95, shape)


def _log_probs(seed=0, shape=SHAPE):
    z = _rng(seed).standard_normal(shape)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _np_softplus(x):
    return np.logaddexp(0.0, x)


def _np_xlogx(t):
    return np.where(t == 0, 0.0, t * np.log(np.where(t == 0, 1.0, t)))


def _np_huber(d, delta):
    return np.where(np.abs(d) < delta, 0.5 * d * d, delta * (np.abs(d) - 0.5 * delta))


# name: (loss over (input, target, extra tensors), module over the same, NumPy reference, input and target arrays,
# extra arrays). Extras are the weight tensors, differentiated too.
CASES = {
    "bce": (lambda x, t, r: F.binary_cross_entropy(x, t, reduction=r),
            lambda x, t, r: nn.BCELoss(reduction=r)(x, t),
            lambda x, t: -(t * np.log(x) + (1 - t) * np.log1p(-x)), (_probs(0), _probs(1)), ()),
    "bce_weight": (lambda x, t, r, w: F.binary_cross_entropy(x, t, w, reduction=r),
                   lambda x, t, r, w: nn.BCELoss(weight=w, reduction=r)(x, t),
                   lambda x, t, w: -w * (t * np.log(x) + (1 - t) * np.log1p(-x)), (_probs(0), _probs(1)),
                   (_probs(2, (4,)),)),
    "bce_logits": (lambda x, t, r: F.binary_cross_entropy_with_logits(x, t, reduction=r),
                   lambda x, t, r: nn.BCEWithLogitsLoss(reduction=r)(x, t),
                   lambda x, t: _np_softplus(x) - t * x, (3 * _normal(0), _probs(1)), ()),
    "bce_logits_weights": (
        lambda x, t, r, w, pw: F.binary_cross_entropy_with_logits(x, t, w, reduction=r, pos_weight=pw),
        lambda x, t, r, w, pw: nn.BCEWithLogitsLoss(weight=w, reduction=r, pos_weight=pw)(x, t),
        lambda x, t, w, pw: w * ((1 - t) * _np_softplus(x) + pw * t * _np_softplus(-x)), (3 * _normal(0), _probs(1)),
        (_probs(2, (3, 1)), 3 * _probs(3, (4,)))),
    "smooth_l1": (lambda x, t, r: F.smooth_l1_loss(x, t, reduction=r),
                  lambda x, t, r: nn.SmoothL1Loss(reduction=r)(x, t),
                  lambda x, t: _np_huber(x - t, 1.0), (_normal(0), _normal(1)), ()),
    "smooth_l1_beta": (lambda x, t, r: F.smooth_l1_loss(x, t, reduction=r, beta=0.4),
                       lambda x, t, r: nn.SmoothL1Loss(reduction=r, beta=0.4)(x, t),
                       lambda x, t: _np_huber(x - t, 0.4) / 0.4, (_normal(0), _normal(1)), ()),
    "smooth_l1_beta0": (lambda x, t, r: F.smooth_l1_loss(x, t, reduction=r, beta=0.0),
                        lambda x, t, r: nn.SmoothL1Loss(reduction=r, beta=0)(x, t),
                        lambda x, t: np.abs(x - t), (_normal(0), _normal(1)), ()),
    "huber": (lambda x, t, r: F.huber_loss(x, t, reduction=r),
              lambda x, t, r: nn.HuberLoss(reduction=r)(x, t),
              lambda x, t: _np_huber(x - t, 1.0), (_normal(0), _normal(1)), ()),
    "huber_delta": (lambda x, t, r: F.huber_loss(x, t, r, 0.3),
                    lambda x, t, r: nn.HuberLoss(r, 0.3)(x, t),
                    lambda x, t: _np_huber(x - t, 0.3), (_normal(0), _normal(1)), ()),
    "kl_div": (lambda x, t, r: F.kl_div(x, t, reduction=r),
               lambda x, t, r: nn.KLDivLoss(reduction=r)(x, t),
               lambda x, t: _np_xlogx(t) - t * x, (_log_probs(0), np.exp(_log_probs(1))), ()),
    "kl_div_log_target": (lambda x, t, r: F.kl_div(x, t, reduction=r, log_target=True),
                          lambda x, t, r: nn.KLDivLoss(reduction=r, log_target=True)(x, t),
                          lambda x, t: np.exp(t) * (t - x), (_log_probs(0), _log_probs(1)), ()),
}


def _tensors(arrays, dtype=nx.float64, requires_grad=False):
    return [nx.tensor(a, dtype=dtype, requires_grad=requires_grad) for a in arrays]


@pytest.mark.filterwarnings("ignore:kl_div. reduction='mean'")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCE)
@pytest.mark.parametrize("name", CASES)
def test_values_match_numpy(name, reduction, dtype):
    fn, module, ref, (x, t), extras = CASES[name]
    nx_dtype, rtol = DTYPES[dtype]
    want = REDUCE[reduction](ref(x, t, *extras))
    xt, tt, *et = _tensors((x, t, *extras), nx_dtype)
    for got in (fn(xt, tt, reduction, *et), module(xt, tt, reduction, *et)):
        assert got.dtype == nx_dtype and got.shape == np.shape(want)
        np.testing.assert_allclose(got.numpy(), want, rtol=rtol, atol=rtol)


@pytest.mark.filterwarnings("ignore:kl_div. reduction='mean'")
@pytest.mark.parametrize("reduction", REDUCE)
@pytest.mark.parametrize("name", CASES)
def test_gradients_first_and_second_order(name, reduction):
    """With respect to the input, the target and the weights, in float64 (every point away from a kink)."""
    fn, _, _, (x, t), extras = CASES[name]
    inputs = _tensors((x, t, *extras), requires_grad=True)

    def loss(x, t, *extras):
        return fn(x, t, reduction, *extras)

    assert gradcheck(loss, inputs) and gradgradcheck(loss, inputs)


# -- binary_cross_entropy -----------------------------------------------------------------------------


def test_bce_floors_each_log_at_minus_100():
    """PyTorch's floor: a probability of exactly 0 or 1 (or one below exp(-100)) costs 100, not inf; the
    gradient through a floored log is 0, elsewhere that of the loss."""
    x = nx.tensor([0.0, 0.0, 1.0, 1.0, 1e-50, 1e-20, 0.3], dtype=nx.float64, requires_grad=True)
    t = nx.tensor([0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.2], dtype=nx.float64, requires_grad=True)
    loss = F.binary_cross_entropy(x, t, reduction="none")
    want = [0.0, 100.0, 100.0, 0.0, 100.0, -math.log(1e-20), -(0.2 * math.log(0.3) + 0.8 * math.log(0.7))]
    np.testing.assert_allclose(loss.numpy(), want, rtol=1e-12)
    gx, gt = nx.autograd.grad(loss.sum(), [x, t])
    np.testing.assert_allclose(gx.numpy(), [1.0, 0.0, 0.0, -1.0, 0.0, -1e20, 0.1 / 0.21], rtol=1e-12)
    np.testing.assert_allclose(gt.numpy(), [100.0, 100.0, -100.0, -100.0, 100.0, -math.log(1e-20),
                                            math.log(0.7 / 0.3)], rtol=1e-12)


@pytest.mark.parametrize("which", ["input", "target"])
@pytest.mark.parametrize("bad", [1.5, -0.25, float("nan")])
def test_bce_refuses_values_outside_0_1(which, bad):
    """As PyTorch: a probability outside [0, 1], NaN included, is an error naming the argument and the value."""
    values = {"input": nx.tensor([0.5, 0.2]), "target": nx.tensor([0.5, 1.0])}
    values[which] = nx.tensor([0.5, bad])
    with pytest.raises(ValueError, match=rf"binary_cross_entropy: all elements of {which} should be between 0 and "
                                         rf"1, got {re.escape(str(np.float32(bad)))}"):
        F.binary_cross_entropy(values["input"], values["target"])


def test_bce_weight_must_broadcast_to_the_input():
    x, t = nx.full((2, 3), 0.5), nx.full((2, 3), 0.5)
    assert F.binary_cross_entropy(x, t, nx.ones(3), reduction="none").shape == (2, 3)
    with pytest.raises(ShapeError, match=r"weight of shape \(2, 2, 3\) must broadcast to the input's shape \(2, 3\)"):
        F.binary_cross_entropy(x, t, nx.ones(2, 2, 3))
    with pytest.raises(ShapeError, match=r"pos_weight .*\(2,\)"):
        F.binary_cross_entropy_with_logits(x, t, pos_weight=nx.ones(2))
    with pytest.raises(TypeError, match="weight must be a Tensor"):
        F.binary_cross_entropy(x, t, [1.0, 1.0, 1.0])


def test_bce_with_logits_is_bce_of_the_sigmoid():
    x, t = 3 * _normal(0), _probs(1)
    w, pw = _probs(2, (4,)), 3 * _probs(3, (4,))
    logits = nx.tensor(x)
    got = F.binary_cross_entropy_with_logits(logits, nx.tensor(t), nx.tensor(w), reduction="none")
    want = F.binary_cross_entropy(logits.sigmoid(), nx.tensor(t), nx.tensor(w), reduction="none")
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10)
    # pos_weight p on a target t is the target p*t with the (1 - t) part kept: binary, the terms split
    for target in (np.zeros(SHAPE), np.ones(SHAPE)):
        got = F.binary_cross_entropy_with_logits(logits, nx.tensor(target), reduction="none", pos_weight=nx.tensor(pw))
        plain = F.binary_cross_entropy_with_logits(logits, nx.tensor(target), reduction="none")
        np.testing.assert_allclose(got.numpy(), plain.numpy() * (pw if target[0, 0] else 1.0), rtol=1e-12)


def test_bce_with_logits_pos_weight_is_stable_for_large_logits():
    x = nx.tensor([1000.0, -1000.0, 60.0, -60.0], dtype=nx.float64, requires_grad=True)
    t = nx.tensor([1.0, 0.0, 0.0, 1.0], dtype=nx.float64)
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="none", pos_weight=nx.tensor([2.0], dtype=nx.float64))
    np.testing.assert_allclose(loss.numpy(), [0.0, 0.0, 60.0, 120.0], atol=1e-12)
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.0, 1.0, -2.0], atol=1e-12)


@pytest.mark.parametrize("pos_weight", [None, 2.0])
def test_bce_with_logits_gradients_at_logit_0(pos_weight):
    """sigmoid(0) - target (times pos_weight on the positive part), and sigmoid'(0) = 1/4 for the second."""
    x = nx.tensor([0.0, 0.0], dtype=nx.float64, requires_grad=True)
    t = nx.tensor([0.3, 1.0], dtype=nx.float64)
    pw = None if pos_weight is None else nx.tensor([pos_weight], dtype=nx.float64)
    (g,) = nx.autograd.grad(F.binary_cross_entropy_with_logits(x, t, reduction="sum", pos_weight=pw), [x],
                            create_graph=True)
    p = 1.0 if pos_weight is None else pos_weight
    want = [0.5 * (1 - 0.3) - p * 0.3 * 0.5, -p * 0.5]  # sigmoid(0)(1 - t) - p t (1 - sigmoid(0))
    np.testing.assert_allclose(g.numpy(), want, rtol=1e-12)
    (h,) = nx.autograd.grad(g.sum(), [x])
    np.testing.assert_allclose(h.numpy(), [0.25 * (1 - 0.3 + p * 0.3), 0.25 * p], rtol=1e-12)


def test_bce_with_logits_keeps_the_earlier_positional_reduction():
    x, t = nx.tensor(_normal(0)), nx.tensor(_probs(1))
    assert F.binary_cross_entropy_with_logits(x, t, "sum").item() == pytest.approx(
        F.binary_cross_entropy_with_logits(x, t, reduction="sum").item(), rel=1e-15)


# -- smooth_l1_loss and huber_loss -------------------------------------------------------------------


def test_huber_is_delta_times_smooth_l1():
    x, t = nx.tensor(2 * _normal(0)), nx.tensor(_normal(1))
    for delta in (0.1, 1.0, 2.5):
        np.testing.assert_allclose(F.huber_loss(x, t, "none", delta).numpy(),
                                   delta * F.smooth_l1_loss(x, t, "none", beta=delta).numpy(), rtol=1e-12)


def test_smooth_l1_beta_0_is_l1():
    x, t = nx.tensor(_normal(0), requires_grad=True), nx.tensor(_normal(1))
    got = nx.autograd.grad(F.smooth_l1_loss(x, t, beta=0.0), [x])[0]
    want = nx.autograd.grad(F.l1_loss(x, t), [x])[0]
    np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("fn", [F.smooth_l1_loss, F.huber_loss], ids=["smooth_l1", "huber"])
def test_second_derivative_at_zero_error(fn):
    """The quadratic part squares the error itself: d²loss/dx² is 1/beta (1 for huber) at x == target too."""
    x = nx.tensor([0.0, 0.1], dtype=nx.float64, requires_grad=True)
    t = nx.tensor([0.0, 0.0], dtype=nx.float64)
    (g,) = nx.autograd.grad(fn(x, t, "sum", 0.5), [x], create_graph=True)
    (h,) = nx.autograd.grad(g.sum(), [x])
    want = 1 / 0.5 if fn is F.smooth_l1_loss else 1.0
    np.testing.assert_allclose(h.numpy(), [want, want], rtol=1e-12)


@pytest.mark.parametrize(("call", "match"), [
    (lambda x: F.smooth_l1_loss(x, x, beta=-0.5), r"smooth_l1_loss: beta must be at least 0.0, got -0.5"),
    (lambda x: F.huber_loss(x, x, delta=0.0), r"huber_loss: delta must be greater than 0.0, got 0.0"),
    (lambda x: F.huber_loss(x, x, delta=-1.0), r"huber_loss: delta must be greater than 0.0, got -1.0"),
    (lambda x: nn.SmoothL1Loss(beta=-1.0)(x, x), r"beta must be at least 0.0, got -1.0"),
    (lambda x: F.smooth_l1_loss(x, x, beta=float("nan")), r"beta must be a finite number, got nan"),
], ids=["beta", "delta0", "delta", "module", "nan"])
def test_bad_beta_and_delta(call, match):
    with pytest.raises(ValueError, match=match):
        call(nx.zeros(3))


# -- kl_div ------------------------------------------------------------------------------------------


def test_kl_div_reductions():
    """'batchmean' is the sum over input.size(0); 'mean' over every element, with PyTorch's warning."""
    x, t = nx.tensor(_log_probs(0)), nx.tensor(np.exp(_log_probs(1)))
    total = F.kl_div(x, t, reduction="sum").item()
    assert F.kl_div(x, t, reduction="batchmean").item() == pytest.approx(total / 3, rel=1e-14)
    with pytest.warns(UserWarning, match="'batchmean' divides by the batch size only"):
        assert F.kl_div(x, t).item() == pytest.approx(total / 12, rel=1e-14)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.kl_div(x, t, reduction="batchmean"), nn.KLDivLoss(reduction="sum")(x, t)
    scalar = (nx.tensor(-0.5), nx.tensor(0.25))
    assert F.kl_div(*scalar, reduction="batchmean").item() == pytest.approx(F.kl_div(*scalar, reduction="sum").item())


def test_kl_div_target_0_counts_0_with_finite_gradients():
    x = nx.tensor([-1.0, -2.0, -0.5], dtype=nx.float64, requires_grad=True)
    t = nx.tensor([0.0, 0.5, 0.5], dtype=nx.float64, requires_grad=True)
    loss = F.kl_div(x, t, reduction="none")
    np.testing.assert_allclose(loss.numpy(), [0.0, 0.5 * (math.log(0.5) + 2.0), 0.5 * (math.log(0.5) + 0.5)])
    gx, gt = nx.autograd.grad(loss.sum(), [x, t], create_graph=True)
    np.testing.assert_allclose(gx.numpy(), [0.0, -0.5, -0.5])
    np.testing.assert_allclose(gt.numpy(), [1.0, math.log(0.5) + 1 + 2.0, math.log(0.5) + 1 + 0.5])
    (h,) = nx.autograd.grad(gt.sum(), [t])
    assert np.isfinite(h.numpy()).all()


def test_kl_div_log_target_agrees_with_probability_target():
    x, logt = nx.tensor(_log_probs(0)), nx.tensor(_log_probs(1))
    np.testing.assert_allclose(F.kl_div(x, logt, "none", log_target=True).numpy(),
                               F.kl_div(x, logt.exp(), "none").numpy(), rtol=1e-12, atol=1e-15)
    with pytest.raises(TypeError, match="log_target must be True or False"):
        F.kl_div(x, logt, "sum", log_target="yes")


# -- shared ------------------------------------------------------------------------------------------

NAN_PROPAGATES = {
    "bce_logits": F.binary_cross_entropy_with_logits,
    "smooth_l1": F.smooth_l1_loss,
    "smooth_l1_beta0": lambda x, t, reduction: F.smooth_l1_loss(x, t, reduction, beta=0.0),
    "huber": F.huber_loss,
    "kl_div": F.kl_div,
    "kl_div_log_target": lambda x, t, reduction: F.kl_div(x, t, reduction, log_target=True),
}


@pytest.mark.parametrize("where", ["input", "target"])
@pytest.mark.parametrize("name", NAN_PROPAGATES)
def test_nan_propagates(name, where):
    x, t = np.array([-0.5, -1.5, -0.2]), np.array([0.25, 0.5, 0.25])
    (x if where == "input" else t)[1] = np.nan
    got = NAN_PROPAGATES[name](nx.tensor(x), nx.tensor(t), reduction="none").numpy()
    assert np.isnan(got[1]) and np.isfinite(got[[0, 2]]).all()
    assert np.isnan(NAN_PROPAGATES[name](nx.tensor(x), nx.tensor(t), reduction="sum").item())


def test_other_losses_refuse_batchmean():
    with pytest.raises(ValueError, match=r"smooth_l1_loss: reduction must be one of .*, got 'batchmean'"):
        F.smooth_l1_loss(nx.zeros(2), nx.zeros(2), reduction="batchmean")


@pytest.mark.parametrize("make", [
    lambda: nn.BCELoss(None, True), lambda: nn.BCEWithLogitsLoss(reduce=False), lambda: nn.SmoothL1Loss("sum"),
    lambda: nn.KLDivLoss(None, True),
], ids=["BCELoss", "BCEWithLogitsLoss", "SmoothL1Loss", "KLDivLoss"])
def test_modules_refuse_pytorchs_deprecated_arguments(make):
    """They stand where PyTorch has them (so positional arguments keep PyTorch's meaning), and are refused."""
    with pytest.raises(TypeError, match="size_average and reduce are deprecated"):
        make()


def test_module_weights_are_buffers():
    loss = nn.BCEWithLogitsLoss(pos_weight=nx.ones(4))
    assert list(loss.state_dict()) == ["pos_weight"]
    assert list(nn.BCELoss(weight=nx.ones(4)).state_dict()) == ["weight"]
    assert list(nn.BCELoss().state_dict()) == []
    assert nn.SmoothL1Loss(beta=0.5).beta == 0.5 and nn.HuberLoss(delta=2.0).delta == 2.0
    assert nn.KLDivLoss(reduction="batchmean", log_target=True).log_target is True
