import math

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
], ids=["step", "multistep", "exponential", "lambda", "cosine"])
def test_known_values(make, want):
    got = _lrs(make(_opt()), len(want) - 1)
    assert got == pytest.approx(want, abs=1e-12)


def test_initial_lr_and_last_epoch():
    opt = _opt(lr=0.3)
    s = sched.StepLR(opt, step_size=1)
    assert opt.param_groups[0]["initial_lr"] == 0.3 and s.base_lrs == [0.3] and s.last_epoch == 0
    with pytest.raises(KeyError, match="initial_lr"):
        sched.StepLR(_opt(), step_size=1, last_epoch=3)


def test_resume_from_state_dict():
    first = sched.StepLR(_opt(), step_size=2, gamma=0.1)
    _lrs(first, 3)
    opt = _opt()
    second = sched.StepLR(opt, step_size=2, gamma=0.1)  # as PyTorch says: the scheduler first, then the states
    opt.load_state_dict(first.optimizer.state_dict())
    second.load_state_dict(first.state_dict())
    assert "optimizer" not in first.state_dict()
    assert _lrs(second, 3) == pytest.approx(_lrs(first, 3))


def test_epoch_argument_uses_the_closed_form():
    s = sched.ExponentialLR(_opt(), gamma=0.5)
    s.optimizer.step()
    with pytest.warns(UserWarning, match="deprecated"):
        s.step(3)
    assert s.get_last_lr() == [0.125]


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
    (lambda o: sched.OneCycleLR(o, max_lr=0.1, total_steps=5, anneal_strategy="exp"), "anneal_strategy"),
    (lambda o: sched.OneCycleLR(o, max_lr=0.1, total_steps=5, pct_start=1.5), "pct_start"),
])
def test_bad_arguments_name_themselves(make, match):
    with pytest.raises(ValueError, match=match):
        make(_opt())


def test_needs_an_optimizer():
    with pytest.raises(TypeError, match="not an Optimizer"):
        sched.StepLR(object(), step_size=1)
