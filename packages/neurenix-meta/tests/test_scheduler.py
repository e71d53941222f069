"""meta_learn(scheduler=...): the meta-optimizer's rate follows the schedule, a changing rate does not make the
compiled meta-gradient trace again, and checkpoints resume the schedule bit for bit."""

import math
import warnings

import numpy as np
import pytest

import neurenix as nx
from meta_helpers import mlp, sine_tasks
from neurenix.meta import MAML, Reptile
from neurenix.optim import SGD, Adam
from neurenix.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, ReduceLROnPlateau, StepLR


def _learner():
    return MAML(mlp(0), inner_lr=0.05, meta_lr=0.01, inner_steps=1)


def _fresh(epoch):
    return sine_tasks(4, 5, seed=epoch)


def test_the_rate_follows_the_schedule_epoch_by_epoch():
    learner = _learner()
    optimizer = learner.default_optimizer()
    schedule = CosineAnnealingLR(optimizer, T_max=6)
    seen = []
    learner.meta_learn(lambda e: (seen.append(optimizer.param_groups[0]["lr"]), _fresh(e))[1], epochs=6,
                       tasks_per_batch=4, scheduler=schedule)
    expected = [0.01 * (1 + math.cos(math.pi * e / 6)) / 2 for e in range(6)]
    np.testing.assert_allclose(seen, expected, rtol=1e-12, atol=1e-15)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-15)  # stepped after the last epoch too


def test_a_changing_rate_replays_the_compiled_meta_gradient():
    learner = _learner()
    schedule = StepLR(learner.default_optimizer(), step_size=1, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", nx.CaptureWarning)
        learner.meta_learn(_fresh, epochs=5, tasks_per_batch=4, scheduler=schedule)
    stats = learner.__dict__["_compiled_gradient"].stats
    assert stats["replays"] >= 4 and stats["eager"] == 0, stats


def test_the_schedule_changes_training_as_the_same_rates_set_by_hand_do():
    scheduled = _learner()
    scheduled.meta_learn(_fresh, epochs=4, tasks_per_batch=4,
                         scheduler=StepLR(scheduled.default_optimizer(), step_size=2, gamma=0.1))
    by_hand, optimizer = _learner(), None
    for epoch in range(4):
        optimizer = by_hand.default_optimizer()
        optimizer.param_groups[0]["lr"] = 0.01 * 0.1 ** (epoch // 2)
        by_hand.meta_learn(lambda e, epoch=epoch: _fresh(epoch), epochs=1, tasks_per_batch=4)
    for a, b in zip(scheduled.parameters(), by_hand.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_reduce_on_plateau_takes_the_epoch_loss():
    learner = _learner()
    optimizer = learner.default_optimizer()
    plateau = ReduceLROnPlateau(optimizer, patience=0, factor=0.5)
    history = learner.meta_learn(lambda e: _fresh(0), epochs=4, tasks_per_batch=4, scheduler=plateau)
    assert plateau.best == min(history["loss"])
    assert plateau.last_epoch == 4


@pytest.mark.parametrize("make", [
    lambda learner: CosineAnnealingLR(learner.default_optimizer(), T_max=5),
    lambda learner: LambdaLR(learner.default_optimizer(), lambda e: 1 / (1 + e)),
], ids=["cosine", "lambda"])
def test_resuming_continues_the_schedule_bit_for_bit(tmp_path, make):
    path = tmp_path / "run.safetensors"
    whole = _learner()
    whole_schedule = make(whole)
    expected = whole.meta_learn(_fresh, epochs=5, tasks_per_batch=2, scheduler=whole_schedule)
    first = _learner()
    first.meta_learn(_fresh, epochs=2, tasks_per_batch=2, scheduler=make(first), checkpoint=path)
    resumed = _learner()
    schedule = make(resumed)
    history = resumed.meta_learn(_fresh, epochs=5, tasks_per_batch=2, scheduler=schedule, resume=path)
    assert history == expected
    assert schedule.last_epoch == whole_schedule.last_epoch == 5
    assert resumed.default_optimizer().param_groups[0]["lr"] == whole.default_optimizer().param_groups[0]["lr"]
    for a, b in zip(whole.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_resuming_with_another_schedule_or_none_is_refused(tmp_path):
    path = tmp_path / "run.safetensors"
    first = _learner()
    first.meta_learn(_fresh, epochs=2, tasks_per_batch=2, checkpoint=path)
    second = _learner()
    with pytest.raises(ValueError, match="saved by a run without a scheduler"):
        second.meta_learn(_fresh, epochs=4, tasks_per_batch=2, resume=path,
                          scheduler=StepLR(second.default_optimizer(), 1))
    first = _learner()
    first.meta_learn(_fresh, epochs=2, tasks_per_batch=2, checkpoint=path,
                     scheduler=StepLR(first.default_optimizer(), 1))
    for scheduler in (None, CosineAnnealingLR(second.default_optimizer(), 3)):
        with pytest.raises(ValueError, match="with scheduler StepLR"):
            second.meta_learn(_fresh, epochs=4, tasks_per_batch=2, resume=path, scheduler=scheduler)


def test_a_scheduler_of_another_optimizer_or_not_a_scheduler_is_refused():
    learner = _learner()
    other = Adam(learner.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="schedules another optimizer than the meta-optimizer"):
        learner.meta_learn(_fresh, epochs=1, scheduler=StepLR(other, 1))  # the default optimizer is used
    with pytest.raises(ValueError, match="schedules another optimizer"):
        learner.meta_learn(_fresh, SGD(learner.parameters(), lr=0.1), epochs=1,
                           scheduler=StepLR(learner.default_optimizer(), 1))
    with pytest.raises(TypeError, match="scheduler must be a neurenix.optim.lr_scheduler scheduler or None, got int"):
        learner.meta_learn(_fresh, epochs=1, scheduler=3)


def test_reptile_schedules_its_interpolation_rate():
    reptile = Reptile(mlp(0), inner_lr=0.05, inner_steps=2)
    interpolation = SGD(reptile.parameters(), lr=0.5)
    reptile.meta_learn(_fresh, interpolation, epochs=3, tasks_per_batch=4,
                       scheduler=StepLR(interpolation, step_size=1, gamma=0.5))
    assert interpolation.param_groups[0]["lr"] == pytest.approx(0.5 / 8)


def test_reduce_on_plateau_resumes_from_a_checkpoint(tmp_path):
    path = tmp_path / "run.safetensors"
    first = _learner()
    first.meta_learn(lambda e: _fresh(0), epochs=1, tasks_per_batch=4, checkpoint=path,
                     scheduler=ReduceLROnPlateau(first.default_optimizer(), patience=0))
    resumed = _learner()
    plateau = ReduceLROnPlateau(resumed.default_optimizer(), patience=0)
    history = resumed.meta_learn(lambda e: _fresh(0), epochs=2, tasks_per_batch=4, scheduler=plateau, resume=path)
    assert plateau.last_epoch == 2 and plateau.best == min(history["loss"])
