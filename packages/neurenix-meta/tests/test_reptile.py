"""Reptile: with SGD at epsilon the update is theta + epsilon * (mean theta' - theta), theta' from plain SGD on each
task's support and query sets in turn; any meta-optimizer gets theta - mean theta' as the gradient (the default:
Adam at meta_lr)."""

import numpy as np
import pytest

from meta_helpers import ce, class_tasks, mlp, sgd_adapt, sine_tasks
from neurenix.meta import Reptile
from neurenix.optim import SGD, Adam


def _in_turn(model, task, steps, lr, loss):
    """``steps`` plain SGD steps, on the task's support set, its query set, its support set..."""
    for k in range(steps):
        model = sgd_adapt(model, *(task[:2] if k % 2 == 0 else task[2:]), 1, lr, loss)
    return model


def _targets(reptile, tasks, loss):
    adapted = [_in_turn(reptile.model, t, reptile.inner_steps, reptile.inner_lr, loss) for t in tasks]
    return [np.mean([a.numpy() for a in ps], axis=0) for ps in zip(*(m.parameters() for m in adapted))]


@pytest.mark.parametrize("batch_tasks", [True, False], ids=["batched", "looped"])
@pytest.mark.parametrize("kind", ["sine", "classes"])
def test_update_interpolates_toward_the_adapted_weights(kind, batch_tasks):
    tasks, model, loss = (sine_tasks(3), mlp(), None) if kind == "sine" else (class_tasks(3), mlp(sizes=(5, 6, 3)), ce)
    reptile = Reptile(model, inner_lr=0.05, meta_lr=0.3, inner_steps=3)
    theta = [p.numpy().copy() for p in reptile.parameters()]
    theta_prime = _targets(reptile, tasks, loss or (lambda p, y: ((p - y) ** 2).mean()))
    history = reptile.meta_learn(tasks, SGD(reptile.parameters(), lr=0.3), epochs=1, tasks_per_batch=len(tasks),
                                 batch_tasks=batch_tasks)
    for p, t, tp in zip(reptile.parameters(), theta, theta_prime):
        np.testing.assert_allclose(p.numpy(), t + 0.3 * (tp - t), rtol=1e-10, atol=1e-12)
    assert len(history["loss"]) == 1 and ("accuracy" in history) == (kind == "classes")


def test_a_meta_optimizer_gets_theta_minus_theta_prime_as_gradient():
    tasks = sine_tasks(4)
    reptile = Reptile(mlp(), inner_lr=0.05, inner_steps=2)
    theta = [p.numpy().copy() for p in reptile.parameters()]
    theta_prime = _targets(reptile, tasks, lambda p, y: ((p - y) ** 2).mean())
    reptile.meta_learn(tasks, Adam(reptile.parameters(), lr=0.01), epochs=1, tasks_per_batch=4)
    for p, t, tp in zip(reptile.parameters(), theta, theta_prime):
        np.testing.assert_allclose(p.grad.numpy(), t - tp, rtol=1e-10, atol=1e-12)
        # Adam's first step moves every coordinate by lr against the sign of its gradient
        moved = p.numpy() - t
        np.testing.assert_allclose(moved[np.abs(t - tp) > 1e-6], -0.01 * np.sign(t - tp)[np.abs(t - tp) > 1e-6],
                                   rtol=1e-4)


def test_seed_defaults_and_adaptation():
    reptile = Reptile(mlp())
    assert (reptile.inner_lr, reptile.meta_lr, reptile.inner_steps) == (0.02, 0.001, 8)
    optimizer = reptile.default_optimizer()  # Adam at meta_lr, as the other learners (the class docstring says why)
    assert isinstance(optimizer, Adam) and optimizer.param_groups[0]["lr"] == 0.001
    sx, sy, qx, _ = sine_tasks(1)[0]
    np.testing.assert_allclose(reptile.adapt_to_task(sx, sy)(qx).numpy(),
                               sgd_adapt(reptile.model, sx, sy, 8, 0.02)(qx).numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="inner_steps must be an int >= 1"):
        Reptile(mlp(), inner_steps=0)
    with pytest.raises(NotImplementedError, match="not the gradient of a loss"):
        reptile.meta_loss(sine_tasks(1))
