"""Stability: adapting for more steps than in training never raises the support loss or goes non-finite
(ANIL, Meta-SGD, Reptile, MAML), Meta-SGD's learned rates stay in [0, max_lr], and ``meta_learn``'s
``grad_clip`` bounds the meta-gradient's norm."""

import itertools
import math

import numpy as np
import pytest

import neurenix as nx
from meta_helpers import mlp, sgd_adapt, sine_tasks
from neurenix.meta import ANIL, MAML, MetaSGD, Reptile
from neurenix.nn import functional as F
from neurenix.optim import SGD, Adam

STEPS = (1, 5, 10, 20)


def errors(learner, tasks, steps=STEPS):
    """Mean support and query MSE over ``tasks`` after each number of adaptation steps."""
    out = []
    for s in steps:
        sup, query = [], []
        for sx, sy, qx, qy in tasks:
            m = learner.adapt_to_task(sx, sy, steps=s)
            with nx.no_grad():
                sup.append(F.mse_loss(m(sx), sy).item())
                query.append(F.mse_loss(m(qx), qy).item())
        out.append((np.mean(sup), np.mean(query)))
    return out


def assert_stable(learner, tasks):
    """Every error finite, the support loss never rising with more steps, and 20 steps no worse than 10."""
    errs = errors(learner, tasks)
    assert all(math.isfinite(e) for pair in errs for e in pair), errs
    sup = [s for s, _ in errs]
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(sup)), errs
    assert errs[-1][1] <= 1.1 * errs[-2][1], errs


@pytest.mark.parametrize("make", [
    lambda m: ANIL(m, inner_lr=2.0),  # far above 2 / (the head's curvature): plain steps diverge
    lambda m: MetaSGD(m, inner_lr=1.0),
    lambda m: Reptile(m, inner_lr=2.0, inner_steps=2),
    lambda m: MAML(m, inner_lr=2.0, inner_steps=1),
], ids=["anil", "metasgd", "reptile", "maml"])
def test_many_adaptation_steps_do_not_diverge(make):
    learner = make(mlp(sizes=(1, 8, 8, 1)))
    learner.meta_learn(sine_tasks(n=4, rows=5), epochs=2, tasks_per_batch=4)
    assert_stable(learner, sine_tasks(n=4, rows=5, seed=7))


def test_metasgd_rates_stay_in_bounds_under_a_huge_meta_learning_rate():
    msgd = MetaSGD(mlp(sizes=(1, 8, 8, 1)), inner_lr=0.1, max_lr=0.5)
    msgd.meta_learn(sine_tasks(n=8, rows=5), Adam(msgd.parameters(), lr=10.0), epochs=3, tasks_per_batch=2)
    rates = np.concatenate([msgd.inner_lrs[n].numpy().ravel() for n in msgd.inner_params])
    assert rates.min() >= 0.0 and rates.max() <= 0.5
    assert rates.min() == 0.0 and rates.max() == 0.5  # the meta-optimizer pushed some rates to each bound
    assert_stable(msgd, sine_tasks(n=4, rows=5, seed=7))


def test_metasgd_rates_assigned_out_of_bounds_are_clamped_where_used():
    msgd = MetaSGD(mlp(), max_lr=0.2)
    name = msgd.inner_params[0]
    with nx.no_grad():
        msgd.inner_lrs[name].fill_(-1.0)
        msgd.inner_lrs[msgd.inner_params[1]].fill_(5.0)
    lrs = msgd.step_lrs(0)
    assert np.all(lrs[0].numpy() == 0.0) and np.all(lrs[1].numpy() == 0.2)


def test_metasgd_max_lr_is_checked():
    assert MetaSGD(mlp()).max_lr == 1.0
    with pytest.raises(ValueError, match="max_lr"):
        MetaSGD(mlp(), max_lr=-1.0)
    with pytest.raises(TypeError, match="max_lr"):
        MetaSGD(mlp(), max_lr="big")
    assert MetaSGD(mlp(), inner_lr=2.0).max_lr == 2.0
    with pytest.raises(ValueError, match="inner_lr=2.0 is above max_lr=1.0"):
        MetaSGD(mlp(), inner_lr=2.0, max_lr=1.0)


def test_adaptation_that_only_descends_is_plain_gradient_descent():
    """A small rate: every step lowers the support loss, so the safeguard changes nothing."""
    from meta_helpers import sgd_adapt
    model = mlp()
    sx, sy, _, _ = sine_tasks(n=1, rows=5)[0]
    adapted = Reptile(model, inner_lr=0.01).adapt_to_task(sx, sy, steps=10)
    ref = sgd_adapt(model, sx, sy, 10, 0.01)
    for a, b in zip(adapted.parameters(), ref.parameters()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-14)


def flat(learner):
    return np.concatenate([p.numpy().ravel() for p in learner.parameters()])


@pytest.mark.parametrize("make", [lambda m: MAML(m, inner_steps=1), lambda m: Reptile(m, inner_steps=2),
                                  lambda m: MetaSGD(m), lambda m: ANIL(m)], ids=["maml", "reptile", "metasgd", "anil"])
def test_grad_clip_bounds_the_meta_gradient_norm(make):
    learner = make(mlp())
    before = flat(learner)
    # SGD at lr 1: the update is the (clipped) meta-gradient itself
    learner.meta_learn(sine_tasks(n=2, rows=5), SGD(learner.parameters(), lr=1.0), epochs=1, tasks_per_batch=2,
                       shuffle=False, grad_clip=1e-3)
    assert np.linalg.norm(flat(learner) - before) <= 1e-3 * (1 + 1e-6)
    unclipped = make(mlp())
    unclipped.meta_learn(sine_tasks(n=2, rows=5), SGD(unclipped.parameters(), lr=1.0), epochs=1, tasks_per_batch=2,
                         shuffle=False)
    step = flat(unclipped) - before
    assert np.linalg.norm(step) > 1e-3  # so the bound did act
    if not isinstance(learner, MetaSGD):  # (whose unclipped step takes rates out of bounds: projected back)
        # same direction, shorter (clip_grad_norm_ divides by the norm + 1e-6)
        np.testing.assert_allclose((flat(learner) - before) / 1e-3, step / (np.linalg.norm(step) + 1e-6),
                                   rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("bad, error", [(0.0, ValueError), (-1.0, ValueError), (math.nan, ValueError),
                                        ("1", TypeError)])
def test_grad_clip_is_checked(bad, error):
    learner = MAML(mlp(), inner_steps=1)
    with pytest.raises(error, match="grad_clip"):
        learner.meta_learn(sine_tasks(n=2, rows=5), epochs=1, grad_clip=bad)


def test_reptile_meta_trains_where_plain_inner_steps_overflow():
    """Reptile's inner loop takes no step that raises a task's support loss: at a rate where plain SGD on the
    support set blows up (checked here), meta-training goes on, and theta stays where descent took it."""
    tasks = sine_tasks(n=4, rows=5)
    model = mlp(sizes=(1, 8, 8, 1))
    sx, sy, _, _ = tasks[0]
    with np.errstate(all="ignore"):
        plain = sgd_adapt(model, sx * 10, sy * 10, 30, 5.0)
        assert not (np.abs(plain(sx).numpy()) < 1e6).all()
    reptile = Reptile(model, inner_lr=5.0, inner_steps=30)
    big = [(sx * 10, sy * 10, qx * 10, qy * 10) for sx, sy, qx, qy in tasks]
    at_theta = np.mean([F.mse_loss(model(qx), qy).item() for _, _, qx, qy in big])
    history = reptile.meta_learn(big, epochs=2, tasks_per_batch=4)
    # the query loss at theta' (the history's): plain steps would have sent it past 1e100
    assert all(v <= 2 * at_theta for v in history["loss"]), (history, at_theta)
    assert all((np.abs(p.numpy()) < 1e3).all() for p in reptile.parameters())
