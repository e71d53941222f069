"""neurenix's losses give PyTorch's values, for every reduction, and PyTorch's gradients with respect to input and
target, in float64; the loss modules give their functions' values and state_dict keys."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import neurenix as nx

RNG = np.random.default_rng(0)


def _x(*shape, scale=1.0):
    return scale * RNG.standard_normal(shape)


def _p(*shape):
    return RNG.uniform(0.02, 0.98, shape)


def _log_p(*shape):
    z = RNG.standard_normal(shape)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


# (id, function name, (input, target), keyword arguments (arrays are tensors), differentiate the tensors?)
CASES = [
    ("bce", "binary_cross_entropy", (_p(3, 4), _p(3, 4)), {}, True),
    ("bce-weight", "binary_cross_entropy", (_p(2, 3, 4), _p(2, 3, 4)), dict(weight=_p(3, 1)), True),
    ("bce-saturated", "binary_cross_entropy", (np.array([0.0, 1.0, 1e-50, 1.0 - 1e-17, 0.5]),
                                               np.array([1.0, 0.0, 1.0, 0.0, 1.0])), {}, False),
    ("bce-logits", "binary_cross_entropy_with_logits", (_x(3, 4, scale=3), _p(3, 4)), {}, True),
    ("bce-logits-weights", "binary_cross_entropy_with_logits", (_x(5, 4, scale=3), _p(5, 4)),
     dict(weight=_p(5, 1), pos_weight=3 * _p(4)), True),
    ("bce-logits-large", "binary_cross_entropy_with_logits", (np.array([-800.0, -30.0, 0.0, 30.0, 800.0]),
                                                              np.array([1.0, 0.3, 0.5, 0.0, 0.0])),
     dict(pos_weight=np.array([2.0])), True),
    ("smooth-l1", "smooth_l1_loss", (_x(4, 5, scale=2), _x(4, 5)), {}, True),
    ("smooth-l1-beta", "smooth_l1_loss", (_x(4, 5, scale=2), _x(4, 5)), dict(beta=0.3), True),
    ("smooth-l1-beta0", "smooth_l1_loss", (_x(4, 5), _x(4, 5)), dict(beta=0.0), True),
    ("huber", "huber_loss", (_x(4, 5, scale=2), _x(4, 5)), {}, True),
    ("huber-delta", "huber_loss", (_x(2, 3, 4, scale=2), _x(2, 3, 4)), dict(delta=2.5), True),
    ("kl-div", "kl_div", (_log_p(3, 5), np.exp(_log_p(3, 5))), {}, True),
    ("kl-div-log-target", "kl_div", (_log_p(2, 3, 4), _log_p(2, 3, 4)), dict(log_target=True), True),
    ("kl-div-zero-targets", "kl_div", (_log_p(2, 4), np.array([[0.0, 0.5, 0.5, 0.0], [0.25, 0.0, 0.75, 0.0]])), {},
     False),
]
REDUCTIONS = {"kl_div": ["none", "sum", "mean", "batchmean"]}


def _run(lib, name: str, arrays: tuple, kwargs: dict, reduction: str, grads: bool):
    """The loss's value, and the gradients of a random linear function of it with respect to input and target
    (PyTorch differentiates no weight)."""
    tensors = [lib.tensor(a, requires_grad=grads) for a in arrays]
    kw = {k: lib.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kl_div's reduction="mean"
        out = getattr(lib.nn.functional, name)(*tensors, reduction=reduction, **kw)
    if not grads:
        return out.detach().numpy(), []
    seed = lib.tensor(np.random.default_rng(1).standard_normal(tuple(out.shape)))
    (out * seed).sum().backward()
    return out.detach().numpy(), [t.grad.numpy() for t in tensors]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_loss_matches_pytorch(torch, case):
    _, name, arrays, kwargs, grads = case
    for reduction in REDUCTIONS.get(name, ["none", "sum", "mean"]):
        got, want = (_run(lib, name, arrays, kwargs, reduction, grads) for lib in (nx, torch))
        assert got[0].shape == want[0].shape, reduction
        np.testing.assert_allclose(got[0], want[0], rtol=1e-12, atol=1e-14, err_msg=f"value, {reduction}")
        assert len(got[1]) == len(want[1])
        for i, (a, b) in enumerate(zip(got[1], want[1])):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14, err_msg=f"gradient {i}, {reduction}")


def test_input_gradient_at_zero_targets_matches_pytorch(torch):
    """kl_div with targets of 0: the input's gradient is PyTorch's (the target's is finite here, NaN there)."""
    logp, t = _log_p(2, 4), np.array([[0.0, 0.5, 0.5, 0.0], [0.25, 0.0, 0.75, 0.0]])
    grads = []
    for lib in (nx, torch):
        x = lib.tensor(logp, requires_grad=True)
        lib.nn.functional.kl_div(x, lib.tensor(t), reduction="batchmean").backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(*grads, rtol=1e-12)


# (module name, constructor keyword arguments, (input, target))
MODULES = [
    ("BCELoss", dict(weight=_p(4), reduction="sum"), (_p(3, 4), _p(3, 4))),
    ("BCEWithLogitsLoss", dict(pos_weight=_p(4), reduction="none"), (_x(3, 4), _p(3, 4))),
    ("SmoothL1Loss", dict(beta=0.5), (_x(3, 4), _x(3, 4))),
    ("HuberLoss", dict(reduction="sum", delta=0.7), (_x(3, 4), _x(3, 4))),
    ("KLDivLoss", dict(reduction="batchmean", log_target=True), (_log_p(3, 4), _log_p(3, 4))),
]


@pytest.mark.parametrize("name, kwargs, arrays", MODULES, ids=[m[0] for m in MODULES])
def test_loss_module_matches_pytorch(torch, name, kwargs, arrays):
    outs = []
    for lib in (nx, torch):
        kw = {k: lib.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        module = getattr(lib.nn, name)(**kw)
        outs.append((module(*(lib.tensor(a) for a in arrays)).numpy(), list(module.state_dict())))
    np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-12)
    assert outs[0][1] == outs[1][1]
