"""evaluate: per-task scores after adaptation, their mean and 95% confidence interval."""

import math

import numpy as np
import pytest

import neurenix as nx
from meta_helpers import assert_unchanged, class_tasks, mlp, sgd_adapt, sine_tasks, snapshot
from neurenix import nn
from neurenix.meta import MAML, PrototypicalNetworks, evaluate


@pytest.mark.parametrize("steps", [0, 1, 3])
def test_regression_scores_are_query_mse_after_adaptation(steps):
    maml = MAML(mlp(), inner_lr=0.1, inner_steps=2)
    tasks = sine_tasks(6)
    before = snapshot([tuple(maml.parameters())])  # the learner is not changed
    result = evaluate(maml, tasks, steps=steps)
    expected = []
    for sx, sy, qx, qy in tasks:
        adapted = sgd_adapt(maml.model, sx, sy, steps, 0.1)
        expected.append(((adapted(qx) - qy) ** 2).mean().item())
    np.testing.assert_allclose(result.values, expected, rtol=1e-10)
    assert result.metric == "mse" and result.mean == pytest.approx(np.mean(expected))
    assert result.ci95 == pytest.approx(1.96 * np.std(expected, ddof=1) / math.sqrt(6))
    assert_unchanged([tuple(maml.parameters())], before)


def test_classification_scores_are_query_accuracy():
    proto = PrototypicalNetworks(mlp(sizes=(5, 6, 4)))
    tasks = class_tasks(5, int_labels=True)
    result = evaluate(proto, tasks)
    expected = [(proto.adapt_to_task(sx, sy)(qx).argmax(dim=1) == qy).float().mean().item() for sx, sy, qx, qy in tasks]
    np.testing.assert_allclose(result.values, expected)
    assert result.metric == "accuracy" and 0 <= result.mean <= 1
    assert str(result).startswith(f"{100 * result.mean:.2f}% ± ") and "over 5 tasks" in str(result)


def test_loss_fn_and_a_single_task():
    maml = MAML(mlp(), inner_steps=1)
    result = evaluate(maml, sine_tasks(1), loss_fn=lambda p, y: (p - y).abs().mean())
    assert result.metric == "loss" and math.isnan(result.ci95) and len(result.values) == 1
    with pytest.raises(ValueError, match="no tasks"):
        evaluate(maml, [])


@pytest.mark.parametrize("make", [lambda body: PrototypicalNetworks(body), lambda body: MAML(body, inner_steps=1)],
                         ids=["protonets", "maml"])
def test_the_learner_is_not_changed_batchnorm_statistics_included(make):
    nx.manual_seed(0)
    learner = make(nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3)).double())
    before = {k: v.numpy().copy() for k, v in learner.state_dict().items()}
    evaluate(learner, class_tasks(4, ways=3, int_labels=True))
    for k, v in learner.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)
