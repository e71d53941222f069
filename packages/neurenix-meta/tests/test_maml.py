"""MAML: the meta-gradient against finite differences, first order against its analytic form, task
batching against one task at a time, adaptation against a plain training loop."""

import numpy as np
import pytest

import neurenix as nx
from meta_helpers import ce, class_tasks, finite_difference, grads, meta_grad, mlp, sgd_adapt, sine_tasks
from neurenix.meta import MAML
from neurenix.nn import functional as F


@pytest.mark.parametrize("steps", [1, 3])
def test_second_order_meta_gradient_equals_finite_differences(steps):
    maml = MAML(mlp(sizes=(1, 5, 5, 1)), inner_lr=0.1, inner_steps=steps)
    tasks = sine_tasks(n=2, rows=4)
    analytic = meta_grad(maml, tasks)
    numeric = finite_difference(lambda: maml.meta_loss(tasks).item(), list(maml.parameters()))
    for a, n in zip(analytic, numeric):
        np.testing.assert_allclose(a, n, rtol=1e-6, atol=1e-8)


def test_second_order_differs_from_first_order():
    tasks = sine_tasks(n=2, rows=4)
    second = meta_grad(MAML(mlp(), inner_lr=0.1, inner_steps=2), tasks)
    first = meta_grad(MAML(mlp(), inner_lr=0.1, inner_steps=2, first_order=True), tasks)
    assert max(np.abs(a - b).max() for a, b in zip(first, second)) > 1e-4


@pytest.mark.parametrize("steps", [1, 3])
def test_first_order_equals_the_query_gradient_at_the_adapted_weights(steps):
    maml = MAML(mlp(), inner_lr=0.1, inner_steps=steps, first_order=True)
    tasks = sine_tasks(n=3, rows=5)
    expected = [np.zeros(p.shape) for p in maml.parameters()]
    for sx, sy, qx, qy in tasks:  # sum over tasks of grad_{theta'} L_query(theta'), theta' by plain SGD
        adapted = sgd_adapt(maml.model, sx, sy, steps, 0.1)
        F.mse_loss(adapted(qx), qy).backward()
        expected = [e + g for e, g in zip(expected, grads(adapted))]
    for a, e in zip(meta_grad(maml, tasks), expected):
        np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("first_order", [False, True], ids=["second", "first"])
@pytest.mark.parametrize("kind", ["sine", "classes"])
def test_batched_meta_gradient_is_the_sum_of_per_task_ones(kind, first_order):
    tasks = sine_tasks(n=5) if kind == "sine" else class_tasks(n=4)
    model = mlp() if kind == "sine" else mlp(sizes=(5, 8, 3))
    maml = MAML(model, inner_lr=0.05, inner_steps=2, first_order=first_order)
    batched = meta_grad(maml, tasks)
    per_task = [meta_grad(maml, [t]) for t in tasks]
    for i, b in enumerate(batched):
        np.testing.assert_allclose(b, sum(g[i] for g in per_task), rtol=1e-6, atol=1e-10)
    for b, lp in zip(batched, meta_grad(maml, tasks, batch_tasks=False)):
        np.testing.assert_allclose(b, lp, rtol=1e-10, atol=1e-12)


def test_one_hot_and_index_labels_give_the_same_meta_gradient():
    maml = MAML(mlp(sizes=(5, 8, 3)), inner_lr=0.1, inner_steps=1)
    one_hot, index = class_tasks(), class_tasks(int_labels=True)
    for a, b in zip(meta_grad(maml, one_hot), meta_grad(maml, index)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("kind", ["sine", "classes"])
def test_adapt_to_task_equals_plain_sgd(kind):
    if kind == "sine":
        maml, (sx, sy, qx, _), loss = MAML(mlp(), inner_lr=0.05, inner_steps=3), sine_tasks(1)[0], F.mse_loss
    else:
        maml, (sx, sy, qx, _), loss = MAML(mlp(sizes=(5, 8, 3)), 0.05, inner_steps=3), class_tasks(1)[0], ce
    before = [p.numpy().copy() for p in maml.parameters()]
    adapted = maml.adapt_to_task(sx, sy)
    reference = sgd_adapt(maml.model, sx, sy, 3, 0.05, loss)
    np.testing.assert_allclose(adapted(qx).numpy(), reference(qx).numpy(), rtol=1e-12)
    assert adapted is not maml.model
    for p, b in zip(maml.parameters(), before):  # the meta-parameters did not move
        np.testing.assert_array_equal(p.numpy(), b)
    one_step = maml.adapt_to_task(sx, sy, steps=1)
    np.testing.assert_allclose(one_step(qx).numpy(), sgd_adapt(maml.model, sx, sy, 1, 0.05, loss)(qx).numpy(),
                               rtol=1e-12)


def test_adapt_to_task_works_under_no_grad():
    maml = MAML(mlp(), inner_lr=0.05, inner_steps=2)
    sx, sy, qx, _ = sine_tasks(1)[0]
    with nx.no_grad():
        adapted = maml.adapt_to_task(sx, sy)
    np.testing.assert_allclose(adapted(qx).numpy(), sgd_adapt(maml.model, sx, sy, 2, 0.05)(qx).numpy(), rtol=1e-12)


def test_zero_inner_steps_is_plain_multi_task_training():
    maml = MAML(mlp(), inner_steps=0)
    tasks = sine_tasks(2)
    expected = [np.zeros(p.shape) for p in maml.parameters()]
    for _, _, qx, qy in tasks:
        maml.zero_grad()
        F.mse_loss(maml(qx), qy).backward()
        expected = [e + g for e, g in zip(expected, grads(maml))]
    for a, e in zip(meta_grad(maml, tasks), expected):
        np.testing.assert_allclose(a, e, rtol=1e-12)


def test_bad_arguments():
    with pytest.raises(ValueError, match="inner_steps must be an int >= 0"):
        MAML(mlp(), inner_steps=-1)
    with pytest.raises(TypeError, match="model must be a neurenix.nn.Module"):
        MAML(lambda x: x)
