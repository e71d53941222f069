import math
import warnings

import pytest

import neurenix as nx
from neurenix import optim
from neurenix.optim import lr_scheduler as sched


def _opt(lr=1.0, cls=optim.SGD, groups=1, **kw):
    params = [nx.ones(2, requires_grad=True) for _ in range(groups)]
    return cls([{"params": [p]} for p in params], lr=lr, **kw)


def _lrs(scheduler, steps):
    out = [scheduler.get_last_lr()[0]]
    for _ in range(steps):
        scheduler.optimizer.step()
        scheduler.step()
        out.append(scheduler.get_last_lr()[0])
    return out


@pytest.mark.parametrize(("make", "want"), [
    (lambda o: sched.StepLR(o, step_size=2, gamma=0.5), [1, 1, 0.5, 0.5, 0.25, 0.25]),
    (lambda o: sched.MultiStepLR(o, milestones=[1, 3, 3], gamma=0.5), [1, 0.5, 0.5, 0.125, 0.125, 0.125]),
    (lambda o: sched.ExponentialLR(o, gamma=0.5), [1, 0.5, 0.25, 0.125, 0.0625, 0.03125]),
    (lambda o: sched.LambdaLR(o, lambda e: 1 / (e + 1)), [1, 1 / 2, 1 / 3, 1 / 4, 1 / 5, 1 / 6]),
    (lambda o: sched.CosineAnnealingLR(o, T_max=4, eta_min=0.0),
     [1, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2, 0.0,
      (1 + math.cos(5 * math.pi / 4)) / 2]),
    (lambda o: sched.LinearLR(o, start_factor=0.25, total_iters=3), [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]),
    (lambda o: sched.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=4), [1, 0.75, 0.5, 0.25, 0, 0]),
    (lambda o: sched.CosineAnnealingWarmRestarts(o, T_0=2, eta_min=0.5), [1, 0.75, 1, 0.75, 1, 0.75]),
    (lambda o: sched.CosineAnnealingWarmRestarts(o, T_0=1, T_mult=2),
     [1, 1, 0.5, 1, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2, 1]),
], ids=["step", "multistep", "exponential", "lambda", "cosine", "linear", "linear-down", "warm-restarts",
        "warm-restarts-mult"])
def test_known_values(make, want):
    got = _lrs(make(_opt()), len(want) - 1)
    assert got == pytest.approx(want, abs=1e-12)


def test_initial_lr_and_last_epoch():
    opt = _opt(lr=0.3)
    s = sched.StepLR(opt, step_size=1)
    assert opt.param_groups[0]["initial_lr"] == 0.3 and s.base_lrs == [0.3] and s.last_epoch == 0
    with pytest.raises(KeyError, match="initial_lr"):
        sched.StepLR(_opt(), step_size=1, last_epoch=3)


@pytest.mark.parametrize("make", [
    lambda o: sched.StepLR(o, step_size=2, gamma=0.1),
    lambda o: sched.LinearLR(o, start_factor=0.1, total_iters=6),
    lambda o: sched.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=2, eta_min=0.1),
], ids=["step", "linear", "warm-restarts"])
def test_resume_from_state_dict(make):
    first = make(_opt())
    _lrs(first, 3)
    opt = _opt()
    second = make(opt)  # as PyTorch says: the scheduler first, then the states
    opt.load_state_dict(first.optimizer.state_dict())
    second.load_state_dict(first.state_dict())
    assert "optimizer" not in first.state_dict()
    assert _lrs(second, 5) == pytest.approx(_lrs(first, 5), abs=1e-15)


def test_epoch_argument_uses_the_closed_form():
    s = sched.ExponentialLR(_opt(), gamma=0.5)
    s.optimizer.step()
    with pytest.warns(UserWarning, match="deprecated"):
        s.step(3)
    assert s.get_last_lr() == [0.125]


def test_linear_lr_epoch_argument_uses_the_closed_form():
    s = sched.LinearLR(_opt(), start_factor=0.5, total_iters=4)
    s.optimizer.step()
    for epoch, want in [(2, 0.75), (9, 1.0), (0, 0.5)]:
        with pytest.warns(UserWarning, match="deprecated"):
            s.step(epoch)
        assert s.get_last_lr() == [pytest.approx(want)] and s.last_epoch == epoch


def _sgdr(epoch: float, t_0: int, t_mult: int, low: float = 0.0) -> float:
    """The SGDR rate at ``epoch`` from an initial rate of 1, by walking the cycles."""
    start, length = 0, t_0
    while epoch >= start + length:
        start, length = start + length, length * t_mult
    return low + (1 - low) * (1 + math.cos(math.pi * (epoch - start) / length)) / 2


@pytest.mark.parametrize("t_mult", [1, 2, 3])
def test_warm_restarts_fractional_epochs(t_mult):
    """step(epoch) with a fraction of an epoch (per batch), not deprecated for this scheduler (as in PyTorch)."""
    s = sched.CosineAnnealingWarmRestarts(_opt(), T_0=2, T_mult=t_mult, eta_min=0.1)
    s.optimizer.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for epoch in [0.25, 1.5, 2.0, 2.75, 7.3, 20.5, 3.0]:
            s.step(epoch)
            assert s.get_last_lr() == [pytest.approx(_sgdr(epoch, 2, t_mult, 0.1), abs=1e-12)]
            assert s.last_epoch == math.floor(epoch)
        s.step()  # one epoch on from 3.0
    assert s.get_last_lr() == [pytest.approx(_sgdr(4.0, 2, t_mult, 0.1), abs=1e-12)] and s.last_epoch == 4


def test_warm_restarts_find_every_restart():
    """At each restart the rate is back at the initial one (PyTorch's float logarithm misses epoch 121 here)."""
    s = sched.CosineAnnealingWarmRestarts(_opt(), T_0=1, T_mult=3)
    for epoch in [1, 4, 13, 40, 121, 364]:
        s.step(epoch)
        assert s.get_last_lr() == [1.0] and s.T_cur == 0 and s.T_i == 2 * epoch + 1


@pytest.mark.parametrize(("t_mult", "last_epoch"), [(1, 2), (1, 11), (2, 2), (2, 40)])
def test_warm_restarts_resume_with_last_epoch(t_mult, last_epoch):
    """Resumed after ``last_epoch``, the schedule goes on as an uninterrupted one (cycles counted in full)."""
    whole = _lrs(sched.CosineAnnealingWarmRestarts(_opt(), T_0=3, T_mult=t_mult), last_epoch + 6)
    opt = _opt()
    opt.param_groups[0]["initial_lr"] = 1.0
    resumed = sched.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=t_mult, last_epoch=last_epoch)
    assert _lrs(resumed, 5) == pytest.approx(whole[last_epoch + 1:], abs=1e-12)


def test_warns_when_stepped_before_the_optimizer():
    s = sched.StepLR(_opt(), step_size=1)
    with pytest.warns(UserWarning, match="before optimizer.step"):
        s.step()


def test_lambda_lr_saves_callable_objects_only():
    class Warmup:
        def __init__(self):
            self.scale = 2.0

        def __call__(self, epoch):
            return self.scale

    a = sched.LambdaLR(_opt(groups=2), [Warmup(), lambda e: 1.0])
    state = a.state_dict()
    assert state["lr_lambdas"] == [{"scale": 2.0}, None]
    state["lr_lambdas"][0]["scale"] = 3.0
    b = sched.LambdaLR(_opt(groups=2), [Warmup(), lambda e: 1.0])
    b.load_state_dict(state)
    assert b.lr_lambdas[0].scale == 3.0
    with pytest.raises(ValueError, match="expected 2 lr_lambdas"):
        sched.LambdaLR(_opt(groups=2), [lambda e: 1.0])


def test_reduce_on_plateau():
    opt = _opt()
    s = sched.ReduceLROnPlateau(opt, patience=1, factor=0.5, cooldown=1, min_lr=0.2)
    lrs = []
    for metric in [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5]:
        s.step(metric)
        lrs.append(s.get_last_lr()[0])
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]
    for _ in range(4):
        s.step(1.0)
    assert s.get_last_lr() == [0.2]


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(factor=1.0), "factor"), (dict(mode="up"), "mode"), (dict(threshold_mode="x"), "threshold_mode"),
    (dict(min_lr=[0.1, 0.2]), "min_lrs"),
])
def test_reduce_on_plateau_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sched.ReduceLROnPlateau(_opt(), **kwargs)


def test_one_cycle_shape():
    opt = _opt(cls=optim.SGD, momentum=0.9)
    s = sched.OneCycleLR(opt, max_lr=1.0, total_steps=10, anneal_strategy="linear")
    lrs = _lrs(s, 9)
    assert lrs[0] == pytest.approx(1.0 / 25) and max(lrs) == pytest.approx(1.0)
    assert lrs[-1] == pytest.approx(1.0 / 25 / 1e4)
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.95)
    with pytest.raises(ValueError, match="total_steps"):
        s.step(), s.step()


def test_one_cycle_moves_adam_beta1_and_needs_momentum():
    opt = _opt(cls=optim.Adam)
    sched.OneCycleLR(opt, max_lr=0.1, epochs=2, steps_per_epoch=5)
    assert opt.param_groups[0]["betas"] == (0.95, 0.999)
    with pytest.raises(ValueError, match="total_steps"):
        sched.OneCycleLR(_opt(), max_lr=0.1)


@pytest.mark.parametrize(("make", "match"), [
    (lambda o: sched.StepLR(o, step_size=0), "step_size"),
    (lambda o: sched.CosineAnnealingLR(o, T_max=0), "T_max"),
    (lambda o: sched.LinearLR(o, start_factor=0.0), "start_factor must be greater than 0.0, got 0.0"),
    (lambda o: sched.LinearLR(o, start_factor=1.5), "start_factor must be at most 1.0, got 1.5"),
    (lambda o: sched.LinearLR(o, end_factor=-0.1), "end_factor must be at least 0.0, got -0.1"),
    (lambda o: sched.LinearLR(o, total_iters=0), "total_iters must be at least 1, got 0"),
    (lambda o: sched.CosineAnnealingWarmRestarts(o, T_0=0), "T_0 must be at least 1, got 0"),
    (lambda o: sched.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=0), "T_mult must be at least 1, got 0"),
    (lambda o: sched.CosineAnnealingWarmRestarts(o, T_0=2).step(-1), "epoch must be at least 0.0, got -1"),
    (lambda o: sched.OneCycleLR(o, max_lr=0.1, total_steps=5, anneal_strategy="exp"), "anneal_strategy"),
    (lambda o: sched.OneCycleLR(o, max_lr=0.1, total_steps=5, pct_start=1.5), "pct_start"),
])
def test_bad_arguments_name_themselves(make, match):
    with pytest.raises(ValueError, match=match):
        make(_opt())


def test_needs_an_optimizer():
    with pytest.raises(TypeError, match="not an Optimizer"):
        sched.StepLR(object(), step_size=1)


def test_warm_restarts_want_integer_periods():
    with pytest.raises(TypeError, match="T_0 must be an int, got float 2.5"):
        sched.CosineAnnealingWarmRestarts(_opt(), T_0=2.5)
