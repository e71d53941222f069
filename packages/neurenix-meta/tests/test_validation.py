"""meta_learn's validation: scores on held-out tasks in the history at the interval asked, the best weights
kept, early stopping, and arguments checked."""

import numpy as np
import pytest

import neurenix as nx
from neurenix import nn
from neurenix.meta import MAML, PrototypicalNetworks, evaluate, generate_regression_tasks


def _sine(n, seed):
    return generate_regression_tasks(n, 10, seed=seed)


def _maml(meta_lr=0.01):
    nx.manual_seed(0)
    return MAML(nn.Sequential(nn.Linear(1, 16), nn.ReLU(), nn.Linear(16, 1)), inner_lr=0.01, meta_lr=meta_lr,
                inner_steps=1)


def test_validation_scores_every_interval_and_after_the_last_epoch():
    learner, train, val = _maml(), _sine(8, 1), _sine(4, 2)
    history = learner.meta_learn(train, epochs=5, tasks_per_batch=4, validation=val, validate_every=2)
    assert history["validation_epoch"] == [2, 4, 5]
    assert len(history["validation"]) == 3 and all(np.isfinite(history["validation"]))
    # the last score is the learner's own, as evaluate gives it
    assert history["validation"][-1] == pytest.approx(evaluate(learner, val).mean, rel=1e-6)


def test_keep_best_ends_with_the_best_scored_weights():
    """At a meta learning rate that makes the scores go up and down, the weights kept are those of the best
    score's epoch: the same as a run stopped after that epoch."""
    train, val = _sine(8, 1), _sine(4, 2)
    learner = _maml(meta_lr=0.3)
    history = learner.meta_learn(train, epochs=6, tasks_per_batch=8, validation=val, keep_best=True)
    best = int(np.argmin(history["validation"]))
    assert best != len(history["validation"]) - 1  # (the setting makes a later epoch worse)
    stopped = _maml(meta_lr=0.3)
    stopped.meta_learn(train, epochs=history["validation_epoch"][best], tasks_per_batch=8)
    for (name, a), (_, b) in zip(learner.state_dict().items(), stopped.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_patience_stops_after_that_many_scores_without_improvement():
    learner, train, val = _maml(), _sine(8, 1), _sine(4, 2)
    opt = nx.optim.SGD(learner.parameters(), lr=0.0)  # nothing changes: no score improves on the first
    history = learner.meta_learn(train, opt, epochs=20, tasks_per_batch=8, validation=val, patience=3)
    assert history["validation_epoch"] == [1, 2, 3, 4] and len(history["loss"]) == 4


def test_accuracy_is_the_score_for_labelled_tasks():
    nx.manual_seed(0)
    rng = np.random.default_rng(0)

    def task():
        centers = rng.normal(size=(3, 4)) * 3
        sx = nx.tensor((centers[:, None] + rng.normal(size=(3, 2, 4))).reshape(6, 4), dtype=nx.float32)
        qx = nx.tensor((centers[:, None] + rng.normal(size=(3, 2, 4))).reshape(6, 4), dtype=nx.float32)
        y = nx.tensor(np.repeat(np.arange(3), 2))
        return sx, y, qx, y

    learner = PrototypicalNetworks(nn.Sequential(nn.Linear(4, 8)))
    history = learner.meta_learn([task() for _ in range(4)], epochs=2, validation=[task() for _ in range(3)])
    assert all(0.0 <= a <= 1.0 for a in history["validation"])


@pytest.mark.parametrize("kwargs, error", [({"keep_best": True}, ValueError), ({"patience": 2}, ValueError),
                                           ({"validation": "tasks", "validate_every": 0}, ValueError),
                                           ({"validation": "tasks", "patience": 0}, ValueError),
                                           ({"validation": "tasks", "keep_best": "yes"}, TypeError)])
def test_arguments_are_checked(kwargs, error):
    learner, train = _maml(), _sine(4, 1)
    if kwargs.get("validation") == "tasks":
        kwargs = kwargs | {"validation": _sine(2, 2)}
    with pytest.raises(error):
        learner.meta_learn(train, epochs=1, **kwargs)
