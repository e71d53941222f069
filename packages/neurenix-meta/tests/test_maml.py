"""MAML: the meta-gradient against finite differences, first order against its analytic form, task
batching against one task at a time, adaptation against a plain training loop."""

import numpy as np
import pytest

import neurenix as nx
from meta_helpers import (
    assert_close_lists,
    ce,
    class_tasks,
    conv_bn,
    finite_difference,
    grads,
    image_tasks,
    meta_grad,
    mlp,
    sgd_adapt,
    sine_tasks,
)
from neurenix.autograd.graph import Node
from neurenix.meta import MAML, multi_step_weights
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


# -- checkpointed inner loop ------------------------------------------------------------------------

@pytest.mark.parametrize("options", [{}, {"per_step_lr": True}, {"multi_step_weights": [0.2, 0.3, 0.5]}],
                         ids=["plain", "per-step-lr", "multi-step"])
@pytest.mark.parametrize("kind", ["mlp", "conv-bn"])
def test_checkpointed_inner_loop_gives_the_same_meta_gradient(kind, options):
    model, tasks = (mlp(), sine_tasks(3)) if kind == "mlp" else (conv_bn(), image_tasks(3))
    plain = MAML(model, inner_lr=0.1, inner_steps=3, **options)
    ckpt = MAML(model, inner_lr=0.1, inner_steps=3, checkpoint_inner_loop=True, **options)
    ckpt.load_state_dict(plain.state_dict())
    np.testing.assert_allclose(ckpt.meta_loss(tasks).item(), plain.meta_loss(tasks).item(), rtol=1e-13)
    for batch_tasks in (True, False):
        assert_close_lists(meta_grad(ckpt, tasks, batch_tasks=batch_tasks), meta_grad(plain, tasks), rtol=1e-8,
                           atol=1e-12)


def test_checkpointed_inner_loop_against_finite_differences():
    maml = MAML(mlp(sizes=(1, 4, 1)), inner_lr=0.1, inner_steps=2, checkpoint_inner_loop=True, per_step_lr=True)
    tasks = sine_tasks(n=2, rows=4)
    numeric = finite_difference(lambda: maml.meta_loss(tasks).item(), list(maml.parameters()))
    assert_close_lists(meta_grad(maml, tasks), numeric)


def test_checkpointing_stores_one_step_of_graph():
    """The graph left after the forward pass: plain MAML keeps every inner step's, checkpointed one step's."""
    def graph_size(steps, checkpointed):
        maml = MAML(mlp(), inner_lr=0.1, inner_steps=steps, checkpoint_inner_loop=checkpointed)
        loss = maml.meta_loss(sine_tasks(2))
        seen, stack = set(), [loss.grad_fn]
        while stack:
            node = stack.pop()
            if isinstance(node, Node) and id(node) not in seen:  # parents: nodes, leaves or None
                seen.add(id(node))
                stack.extend(node.parents)
        return len(seen)
    plain = [graph_size(s, False) for s in (2, 4, 8)]
    ckpt = [graph_size(s, True) for s in (2, 4, 8)]
    assert plain[2] - plain[1] > 2 * (ckpt[2] - ckpt[1]) > 0  # a handful of nodes a step instead of a graph


# -- MAML++ options -----------------------------------------------------------------------------------

def test_per_step_learning_rates_against_finite_differences_and_plain_sgd():
    maml = MAML(mlp(sizes=(1, 4, 1)), inner_lr=0.1, inner_steps=2, per_step_lr=True)
    with nx.no_grad():  # different rates per step and per tensor
        for i, name in enumerate(maml.inner_params):
            maml.inner_lrs[name].copy_(nx.tensor([0.05 + 0.01 * i, 0.2], dtype=nx.float64))
    tasks = sine_tasks(n=2, rows=4)
    numeric = finite_difference(lambda: maml.meta_loss(tasks).item(), list(maml.parameters()))
    assert_close_lists(meta_grad(maml, tasks), numeric)
    assert all(maml.inner_lrs[n].grad is not None for n in maml.inner_params)
    assert {n for n, _ in maml.named_parameters()} >= {"inner_lrs.0_weight", "inner_lrs.2_bias"}
    # adapt_to_task takes the learned rates: step k uses rate k (and the last rate beyond)
    sx, sy, qx, _ = tasks[0]
    m = maml.clone_model()
    for k in range(3):
        lr = {n: maml.inner_lrs[n].numpy()[min(k, 1)] for n in maml.inner_params}
        loss = F.mse_loss(m(sx), sy)
        gs = nx.autograd.grad(loss, list(m.parameters()))
        with nx.no_grad():
            for (n, p), g in zip(m.named_parameters(), gs):
                p.sub_(g * float(lr[n]))
    np.testing.assert_allclose(maml.adapt_to_task(sx, sy, steps=3)(qx).numpy(), m(qx).numpy(), rtol=1e-12)


def test_multi_step_loss_is_the_weighted_sum_of_query_losses_after_each_step():
    weights = [0.1, 0.0, 0.9]
    maml = MAML(mlp(), inner_lr=0.1, inner_steps=3, multi_step_weights=weights)
    tasks = sine_tasks(2)
    expected = sum(w * F.mse_loss(sgd_adapt(maml.model, sx, sy, k + 1, 0.1)(qx), qy).item()
                   for sx, sy, qx, qy in tasks for k, w in enumerate(weights))
    np.testing.assert_allclose(maml.meta_loss(tasks).item(), expected, rtol=1e-12)
    maml.multi_step_weights = [0.0, 0.0, 1.0]
    assert_close_lists(meta_grad(maml, tasks), meta_grad(MAML(mlp(), inner_lr=0.1, inner_steps=3), tasks),
                       rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="multi_step_weights has 2 entries, expected one per inner step"):
        maml.multi_step_weights = [0.5, 0.5]  # refused where it is assigned, not epochs later
    maml.inner_steps = 2
    with pytest.raises(ValueError, match="multi_step_weights has 3 entries, expected one per inner step"):
        maml.meta_loss(tasks)


def test_multi_step_weights_anneal_towards_the_last_step():
    w0, w5, w10, w20 = (multi_step_weights(5, e, 10) for e in (0, 5, 10, 20))
    np.testing.assert_allclose(w0, [0.2] * 5)
    for w in (w0, w5, w10, w20):
        assert sum(w) == pytest.approx(1.0)
    assert w5[0] < w0[0] and w5[-1] > w0[-1]
    assert w10 == pytest.approx(w20) and w10[0] == pytest.approx(0.006)
    with pytest.raises(ValueError):
        multi_step_weights(0, 1, 1)


def test_inner_params_adapt_only_the_named_parameters():
    maml = MAML(mlp(), inner_lr=0.1, inner_steps=2, inner_params=["2"])
    assert maml.inner_params == ("2.weight", "2.bias")
    with pytest.raises(ValueError, match=r"\['9'\] name no trainable parameter"):
        MAML(mlp(), inner_params=["9"])
