"""iMAML: the implicit meta-gradient against finite differences of the exact inner solution (a linear model,
whose regularised inner problem has a closed form), batched equal to looped, a graph that does not grow with
the inner steps, adaptation as the regularised problem, and learning."""

import numpy as np
import pytest

import neurenix as nx
from meta_helpers import assert_close_lists, class_tasks, meta_grad, mlp, sine_tasks
from neurenix import nn
from neurenix.meta import MAML, evaluate, iMAML

LAM = 2.0


def linear_tasks(n=3, rows=6, seed=0):
    g = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        w = g.normal(size=(2, 1))
        xs, xq = g.normal(size=(rows, 2)), g.normal(size=(rows, 2))
        out.append(tuple(nx.tensor(a) for a in (xs, xs @ w + 0.1 * g.normal(size=(rows, 1)), xq, xq @ w)))
    return out


def exact_meta_loss(weight, bias, tasks, lam=LAM):
    """Sum over tasks of the query MSE at the exact solution of min mean((A w - y)^2) + lam/2 |w - theta|^2
    (A = [x, 1], w = [weight; bias]), in NumPy."""
    theta = np.concatenate([weight.ravel(), bias.ravel()])
    total = 0.0
    for sx, sy, qx, qy in tasks:
        a, n = np.c_[sx.numpy(), np.ones(len(sx))], len(sx)
        w = np.linalg.solve(2 / n * a.T @ a + lam * np.eye(3), 2 / n * a.T @ sy.numpy()[:, 0] + lam * theta)
        total += np.mean((np.c_[qx.numpy(), np.ones(len(qx))] @ w - qy.numpy()[:, 0]) ** 2)
    return total


def test_meta_gradient_equals_finite_differences_of_the_exact_inner_solution():
    nx.manual_seed(0)
    model = nn.Linear(2, 1).double()
    learner = iMAML(model, inner_lr=0.1, inner_steps=150, lam=LAM, cg_steps=3)  # 3 parameters: CG is exact
    tasks = linear_tasks()
    w, b = model.weight.numpy().copy(), model.bias.numpy().copy()
    eps = 1e-6
    fd_w = np.array([(exact_meta_loss(w + e.reshape(w.shape), b, tasks) -
                      exact_meta_loss(w - e.reshape(w.shape), b, tasks)) / (2 * eps) for e in np.eye(2) * eps])
    fd_b = (exact_meta_loss(w, b + eps, tasks) - exact_meta_loss(w, b - eps, tasks)) / (2 * eps)
    np.testing.assert_allclose(learner.meta_loss(tasks).item(), exact_meta_loss(w, b, tasks), rtol=1e-8)
    got = meta_grad(learner, tasks)
    np.testing.assert_allclose(got[0].ravel(), fd_w, rtol=1e-7)
    np.testing.assert_allclose(got[1], [fd_b], rtol=1e-7)


@pytest.mark.parametrize("kind", ["sine", "class"])
def test_batched_tasks_get_the_gradients_they_get_alone(kind):
    tasks = sine_tasks(3) if kind == "sine" else class_tasks(3, int_labels=True)
    model = mlp(sizes=(1, 6, 6, 1)) if kind == "sine" else mlp(sizes=(5, 6, 3))
    learner = iMAML(model, inner_lr=0.05, inner_steps=3, cg_steps=2)  # CG far from converged: per-task coefficients
    assert_close_lists(meta_grad(learner, tasks), meta_grad(learner, tasks, batch_tasks=False), rtol=1e-10)


def graph_size(t):
    """Nodes in the autograd graph of ``t``."""
    seen, todo = set(), [t.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        todo += [getattr(p, "grad_fn", p) for p in node.parents if not getattr(p, "is_leaf", False)]
    return len(seen)


def test_the_graph_does_not_grow_with_the_inner_steps():
    tasks = sine_tasks(2)
    sizes = {steps: graph_size(iMAML(mlp(), inner_steps=steps).meta_loss(tasks)) for steps in (1, 4, 16)}
    assert len(set(sizes.values())) == 1, sizes
    maml = {steps: graph_size(MAML(mlp(), inner_steps=steps).meta_loss(tasks)) for steps in (1, 4)}
    assert maml[4] > maml[1]  # (the measure sees an unrolled inner loop grow)


def test_adapt_to_task_solves_the_regularised_problem():
    learner = iMAML(mlp(), inner_lr=0.1, inner_steps=4, lam=0.5)
    sx, sy, qx, _ = sine_tasks(1)[0]
    theta = [p.detach().clone() for p in learner.model.parameters()]
    m = learner.clone_model()
    for _ in range(4):
        gs = nx.autograd.grad(nx.nn.functional.mse_loss(m(sx), sy), list(m.parameters()))
        with nx.no_grad():
            for p, g, t in zip(m.parameters(), gs, theta):
                p.sub_(0.1 * (g + 0.5 * (p - t)))
    np.testing.assert_allclose(learner.adapt_to_task(sx, sy)(qx).numpy(), m(qx).numpy(), rtol=1e-10)


def test_lam_large_nears_first_order_maml():
    """As lam grows the adapted weights stay at theta and the meta-gradient tends to the query gradient at theta,
    which is first-order MAML's with no inner steps: a check of the direction of the implicit correction."""
    tasks = sine_tasks(2)
    fo = meta_grad(MAML(mlp(), inner_steps=0, first_order=True), tasks)
    far = meta_grad(iMAML(mlp(), lam=1e6, inner_lr=1e-7, inner_steps=2), tasks)
    near = meta_grad(iMAML(mlp(), lam=1.0, inner_lr=1e-7, inner_steps=2), tasks)
    assert_close_lists(far, fo, rtol=1e-3, atol=1e-8)  # (I + H/lam)^-1 differs from I by about |H|/lam
    assert not np.allclose(np.concatenate([a.ravel() for a in near]), np.concatenate([a.ravel() for a in fo]),
                           rtol=1e-2)


def test_it_learns_sine():
    nx.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 20), nn.ReLU(), nn.Linear(20, 1))
    learner = iMAML(model, inner_lr=0.02, inner_steps=5, lam=10.0, meta_lr=0.01)
    train = nx.meta.generate_regression_tasks(24, 10, seed=0)
    test = nx.meta.generate_regression_tasks(16, 10, seed=1)
    before = evaluate(learner, test).mean
    learner.meta_learn(train, epochs=6, tasks_per_batch=4)
    assert evaluate(learner, test).mean < 0.9 * before  # 0.80-0.84 of it over seeds 0-2


def test_hyperparameters_name_the_regularisation():
    h = iMAML(mlp(), lam=0.5, cg_steps=7, inner_steps=3).hyperparameters()
    assert (h["learner"], h["lam"], h["cg_steps"], h["inner_steps"]) == ("iMAML", 0.5, 7, 3)
    with pytest.raises(ValueError, match="lam must be a finite number > 0"):
        iMAML(mlp(), lam=0)
