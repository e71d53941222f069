"""neurenix.optim.lr_scheduler sets the same learning rates as torch.optim.lr_scheduler over 100 steps."""

from __future__ import annotations

import math

import pytest

import neurenix as nx
from neurenix import optim

STEPS = 100

# (scheduler name, keyword arguments, optimizer name, optimizer arguments): each run in both frameworks
CASES = [
    ("StepLR", dict(step_size=7), "SGD", dict(lr=0.5)),
    ("StepLR", dict(step_size=3, gamma=0.7), "Adam", dict(lr=0.01)),
    ("MultiStepLR", dict(milestones=[10, 30, 30, 80]), "SGD", dict(lr=0.5)),
    ("MultiStepLR", dict(milestones=[5, 50], gamma=0.5), "SGD", dict(lr=0.1, momentum=0.9)),
    ("ExponentialLR", dict(gamma=0.97), "SGD", dict(lr=0.3)),
    ("CosineAnnealingLR", dict(T_max=100), "SGD", dict(lr=0.1)),
    ("CosineAnnealingLR", dict(T_max=17, eta_min=0.01), "Adam", dict(lr=0.2)),
    ("LambdaLR", dict(lr_lambda=lambda e: 0.95 ** e + 0.01 * (e % 5)), "SGD", dict(lr=0.2)),
    ("OneCycleLR", dict(max_lr=0.9, total_steps=101), "SGD", dict(lr=0.1, momentum=0.9)),
    ("OneCycleLR", dict(max_lr=[0.9, 0.2], epochs=10, steps_per_epoch=11, pct_start=0.25,
                        anneal_strategy="linear", three_phase=True), "SGD", dict(lr=0.1, momentum=0.9)),
    ("OneCycleLR", dict(max_lr=0.05, total_steps=120, div_factor=10.0, final_div_factor=100.0), "Adam",
     dict(lr=0.01)),
    ("OneCycleLR", dict(max_lr=0.5, total_steps=100, cycle_momentum=False), "SGD", dict(lr=0.1)),
    ("LinearLR", dict(), "SGD", dict(lr=0.5)),
    ("LinearLR", dict(start_factor=0.05, end_factor=0.8, total_iters=30), "Adam", dict(lr=0.01)),
    ("LinearLR", dict(start_factor=1.0, end_factor=0.0, total_iters=40), "SGD", dict(lr=0.3, momentum=0.9)),
    ("CosineAnnealingWarmRestarts", dict(T_0=10), "SGD", dict(lr=0.1)),
    ("CosineAnnealingWarmRestarts", dict(T_0=3, T_mult=2, eta_min=0.001), "Adam", dict(lr=0.2)),
    ("CosineAnnealingWarmRestarts", dict(T_0=1, T_mult=3), "SGD", dict(lr=0.4)),
]


def _groups(lib, two: bool) -> list:
    made = [lib.ones(3, requires_grad=True) for _ in range(2 if two else 1)]
    return [{"params": [p]} for p in made]


def _trajectory(lib, lib_optim, case, two_groups: bool) -> list:
    name, kwargs, opt_name, opt_kwargs = case
    opt = getattr(lib_optim, opt_name)(_groups(lib, two_groups), **opt_kwargs)
    scheduler = getattr(lib_optim.lr_scheduler, name)(opt, **kwargs)
    out = []
    for _ in range(STEPS):
        opt.step()
        scheduler.step()
        out.append(scheduler.get_last_lr() + [g.get("momentum", g.get("betas", (None,))[0]) for g in opt.param_groups])
    return out


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_learning_rates_match_pytorch(torch, case):
    two = isinstance(case[1].get("max_lr"), list)
    ours = _trajectory(nx, optim, case, two)
    theirs = _trajectory(torch, torch.optim, case, two)
    for step, (a, b) in enumerate(zip(ours, theirs)):
        assert a == pytest.approx([float(x) for x in b], rel=1e-12, abs=1e-15), f"step {step + 1}"


@pytest.mark.parametrize("mode, threshold_mode", [("min", "rel"), ("min", "abs"), ("max", "rel"), ("max", "abs")])
def test_reduce_on_plateau_matches_pytorch(torch, mode, threshold_mode):
    metrics = [math.sin(i / 3.0) + 0.01 * (i % 7) - 0.002 * i for i in range(STEPS)]
    runs = []
    for lib, lib_optim in ((nx, optim), (torch, torch.optim)):
        opt = lib_optim.SGD(_groups(lib, True), lr=1.0)
        s = lib_optim.lr_scheduler.ReduceLROnPlateau(opt, mode=mode, factor=0.5, patience=2, threshold=0.05,
                                                     threshold_mode=threshold_mode, cooldown=1, min_lr=[0.01, 0.1])
        lrs = []
        for m in metrics:
            s.step(m)
            lrs.append(s.get_last_lr())
        runs.append(lrs)
    assert runs[0] == runs[1]


@pytest.mark.parametrize("name, kwargs", [("StepLR", dict(step_size=4, gamma=0.5)), ("ExponentialLR", dict(gamma=0.9)),
                                          ("CosineAnnealingLR", dict(T_max=9)),
                                          ("MultiStepLR", dict(milestones=[2, 5, 11])),
                                          ("LinearLR", dict(start_factor=0.1, total_iters=10))])
def test_resuming_with_last_epoch_matches_pytorch(torch, name, kwargs):
    """Resume at epoch 6 (groups holding initial_lr), as from a checkpoint; and the deprecated step(epoch)."""
    runs = []
    for lib, lib_optim in ((nx, optim), (torch, torch.optim)):
        opt = lib_optim.SGD(_groups(lib, False), lr=0.4)
        opt.param_groups[0]["initial_lr"] = 0.8
        s = getattr(lib_optim.lr_scheduler, name)(opt, last_epoch=6, **kwargs)
        lrs = [s.get_last_lr()[0]]
        for _ in range(12):
            opt.step()
            s.step()
            lrs.append(s.get_last_lr()[0])
        with pytest.warns(UserWarning):
            s.step(20)
        lrs.append(s.get_last_lr()[0])
        runs.append(lrs)
    assert runs[0] == pytest.approx(runs[1], rel=1e-12)


@pytest.mark.parametrize("t_mult", [1, 2])
def test_warm_restarts_fractional_epochs_and_resuming_match_pytorch(torch, t_mult):
    """step(epoch) per batch (a fraction of an epoch), mixed with plain steps, from a fresh start and resumed
    (within the first restart: past it PyTorch's resume counts one restart at most)."""
    epochs = [e + i / 4 for e in range(12) for i in range(4)] + [None] * 5 + [2.5, 30.25, 0.0, None]
    for last_epoch in (-1, 4):
        runs = []
        for lib, lib_optim in ((nx, optim), (torch, torch.optim)):
            opt = lib_optim.SGD(_groups(lib, True), lr=0.4)
            for group in opt.param_groups if last_epoch >= 0 else ():
                group["initial_lr"] = 0.8
            s = lib_optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=t_mult, eta_min=0.05,
                                                                  last_epoch=last_epoch)
            lrs = list(s.get_last_lr())
            for epoch in epochs:
                opt.step()
                s.step(epoch)
                lrs += s.get_last_lr() + [s.last_epoch]
            runs.append(lrs)
        assert runs[0] == pytest.approx(runs[1], rel=1e-12, abs=1e-15), f"last_epoch={last_epoch}"
