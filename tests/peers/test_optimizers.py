"""neurenix's optimizers follow torch.optim's trajectories (float64, 30 steps, two parameter groups), and
clip_grad_norm_/clip_grad_value_ do what torch.nn.utils's do."""

from __future__ import annotations

import math

import numpy as np
import pytest

import neurenix as nx

STEPS = 30

CASES = [
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.9, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.3, eps=1e-6)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.05, maximize=True)),
    ("Adam", dict(lr=0.05, amsgrad=True)),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.95), weight_decay=0.1, amsgrad=True, maximize=True)),
    ("AdamW", dict(lr=0.05, amsgrad=True)),
    ("AdamW", dict(lr=0.05, weight_decay=0.3, amsgrad=True)),
    ("Adam", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
]


def _grads(seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal((4, 3)) * (1 + 2 * (i % 4 == 0)), rng.standard_normal(5)] for i in range(STEPS)]


def _trajectory(lib, name: str, cfg: dict) -> list:
    rng = np.random.default_rng(1)
    params = [lib.tensor(rng.standard_normal(s), dtype=lib.float64, requires_grad=True) for s in ((4, 3), (5,))]
    opt = getattr(lib.optim, name)([{"params": [params[0]]}, {"params": [params[1]], "lr": cfg.get("lr", 1.0) / 2}],
                                   **cfg)
    out = []
    for grads in _grads():
        for p, g in zip(params, grads):
            p.grad = lib.tensor(g, dtype=lib.float64)
        opt.step()
        out.append([p.detach().numpy().copy() for p in params])
    return out


@pytest.mark.parametrize("name, cfg", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_trajectories_match_pytorch(torch, name, cfg):
    for step, (ours, theirs) in enumerate(zip(_trajectory(nx, name, cfg), _trajectory(torch, name, cfg))):
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"{name} {cfg}: step {step + 1}")


@pytest.mark.parametrize("name, cfg", CASES[:8], ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES[:8])])
def test_state_dicts_hold_what_pytorchs_hold(torch, name, cfg):
    """Same state keys per parameter and same group keys (PyTorch's extras, such as foreach, aside)."""
    dicts = []
    for lib in (nx, torch):
        p = lib.ones(3, dtype=lib.float64, requires_grad=True)
        opt = getattr(lib.optim, name)([p], **cfg)
        p.grad = lib.ones(3, dtype=lib.float64)
        opt.step()
        dicts.append(opt.state_dict())
    ours, theirs = dicts
    assert set(ours["state"][0]) == set(theirs["state"][0])
    for key, value in ours["state"][0].items():
        np.testing.assert_allclose(np.asarray(value), theirs["state"][0][key].numpy(), rtol=1e-12)
    assert set(ours["param_groups"][0]) <= set(theirs["param_groups"][0])


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.5, math.inf, 0.0])
@pytest.mark.parametrize("max_norm", [0.5, 50.0])
def test_clip_grad_norm_matches_pytorch(torch, norm_type, max_norm):
    grads = _grads(3)[0] + [np.zeros(2)]
    results = []
    for lib in (nx, torch):
        params = [lib.zeros(g.shape, dtype=lib.float64, requires_grad=True) for g in grads]
        for p, g in zip(params, grads):
            p.grad = lib.tensor(g, dtype=lib.float64)
        total = lib.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
        results.append([total.numpy()] + [p.grad.numpy() for p in params])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_clip_grad_value_matches_pytorch(torch):
    grads = _grads(4)[0]
    results = []
    for lib in (nx, torch):
        params = [lib.zeros(g.shape, dtype=lib.float64, requires_grad=True) for g in grads]
        for p, g in zip(params, grads):
            p.grad = lib.tensor(g, dtype=lib.float64)
        lib.nn.utils.clip_grad_value_(params, 0.7)
        results.append([p.grad.numpy() for p in params])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
