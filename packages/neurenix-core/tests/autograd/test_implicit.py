"""implicit_grad: gradients of a solution through its optimality condition, against finite differences of problems
solved exactly (ridge regression in closed form; logistic regression by Newton's method), float64."""

from __future__ import annotations

import numpy as np
import pytest

import neurenix as nx
from neurenix.autograd import conjugate_gradient, implicit_grad
from neurenix.testing import gradcheck, gradgradcheck

RNG = np.random.default_rng(0)
N, D, LAM = 9, 4, 0.7
X, Y = RNG.normal(size=(N, D)), RNG.normal(size=N)
XQ, YQ = RNG.normal(size=(5, D)), RNG.normal(size=5)


def ridge(x, y, theta, lam=LAM):
    """argmin_w |x w - y|^2 / 2 + lam |w - theta|^2 / 2, in closed form (NumPy)."""
    return np.linalg.solve(x.T @ x + lam * np.eye(x.shape[-1]), x.T @ y + lam * theta)


def ridge_optimality(ws, inputs):
    """The gradient of the ridge problem in w: zero at its solution."""
    (w,), (x, y, theta) = ws, inputs
    r = x @ w - y
    (g,) = nx.autograd.grad(0.5 * (r * r).sum(), [w], create_graph=True)
    return [g + LAM * (w - theta)]


def solved(x, y, theta):
    """The ridge solution, computed outside autograd, attached by the implicit function theorem."""
    w = nx.tensor(ridge(x.numpy(), y.numpy(), theta.numpy()))
    return implicit_grad(ridge_optimality, w, [x, y, theta], cg_steps=D)


def leaf(a):
    return nx.tensor(np.array(a, dtype=np.float64), requires_grad=True)


def test_meta_gradient_equals_finite_differences_of_the_exact_solution():
    theta = RNG.normal(size=D)

    def outer(th):
        r = XQ @ ridge(X, Y, th) - YQ
        return 0.5 * r @ r

    fd = np.array([(outer(theta + e) - outer(theta - e)) / 2e-6 for e in np.eye(D) * 1e-6])
    t = leaf(theta)
    r = nx.tensor(XQ) @ solved(nx.tensor(X), nx.tensor(Y), t) - nx.tensor(YQ)
    (0.5 * (r * r).sum()).backward()
    np.testing.assert_allclose(t.grad.numpy(), fd, rtol=1e-7, atol=1e-9)


def test_gradcheck_in_every_input():
    gradcheck(solved, [leaf(X), leaf(Y), leaf(RNG.normal(size=D))])


def test_a_second_order_is_refused_not_wrong():
    """The conjugate-gradient solve is not differentiated: asking for a recorded backward pass raises."""
    with pytest.raises(RuntimeError, match="second order through an implicit solution"):
        gradgradcheck(solved, [leaf(X), leaf(Y), leaf(RNG.normal(size=D))])


def newton_logistic(x, y, theta, lam, steps=30):
    """argmin_w sum softplus(-y x w) + lam |w - theta|^2 / 2 (labels +-1), by Newton's method (NumPy)."""
    w = theta.copy()
    for _ in range(steps):
        p = 1 / (1 + np.exp(y * (x @ w)))  # sigmoid(-y x w)
        g = -(x.T @ (y * p)) + lam * (w - theta)
        h = x.T @ (x * (p * (1 - p))[:, None]) + lam * np.eye(len(w))
        w = w - np.linalg.solve(h, g)
    return w


def test_nonlinear_inner_problem():
    """A logistic regression solved by Newton's method: the implicit gradient of a query loss matches finite
    differences of the whole solve."""
    lam, y = 0.5, np.sign(Y) + (Y == 0)
    theta = RNG.normal(size=D)

    def outer(th):
        return float(np.sum((XQ @ newton_logistic(X, y, th, lam) - YQ) ** 2))

    fd = np.array([(outer(theta + e) - outer(theta - e)) / 2e-6 for e in np.eye(D) * 1e-6])
    xt, yt = nx.tensor(X), nx.tensor(y)

    def optimality(ws, inputs):
        (w,), (th,) = ws, inputs
        loss = ((-yt * (xt @ w)).exp() + 1).log().sum()  # softplus
        (g,) = nx.autograd.grad(loss, [w], create_graph=True)
        return [g + lam * (w - th)]

    t = leaf(theta)
    w = implicit_grad(optimality, nx.tensor(newton_logistic(X, y, theta, lam)), [t], cg_steps=2 * D)
    (((nx.tensor(XQ) @ w - nx.tensor(YQ)) ** 2).sum()).backward()
    np.testing.assert_allclose(t.grad.numpy(), fd, rtol=1e-6, atol=1e-8)


def test_per_sample_problems_get_their_own_gradients():
    """Three problems along dim 0, too few steps to be exact: per_sample=True gives each the gradient it gets
    alone (its own conjugate-gradient coefficients)."""
    xs, ys, th = RNG.normal(size=(3, N, D)), RNG.normal(size=(3, N)), RNG.normal(size=D)

    def optimality(ws, inputs):
        (w,), (x, y, theta) = ws, inputs
        r = (x @ w.unsqueeze(-1)).squeeze(-1) - y
        (g,) = nx.autograd.grad(0.5 * (r * r).sum(), [w], create_graph=True)
        return [g + LAM * (w - theta)]

    def meta_grad(x, y, per_sample):
        t = leaf(th)
        sol = np.stack([ridge(a, b, th) for a, b in zip(x, y)])
        w = implicit_grad(optimality, nx.tensor(sol), [nx.tensor(x), nx.tensor(y), t], cg_steps=2,
                          per_sample=per_sample)
        (w.sum(-1) ** 2).sum().backward()
        return t.grad.numpy()

    alone = sum(meta_grad(xs[i:i + 1], ys[i:i + 1], False) for i in range(3))
    np.testing.assert_allclose(meta_grad(xs, ys, True), alone, rtol=1e-12)
    assert not np.allclose(meta_grad(xs, ys, False), alone, rtol=1e-6)  # one shared CG differs after 2 steps


def test_several_solution_tensors_and_an_unused_input():
    """A solution in two tensors (w, b), and an input the condition never reads (its gradient stays None)."""
    x, y = nx.tensor(X), nx.tensor(Y)

    def optimality(ws, inputs):
        w, b = ws
        theta, _unused = inputs
        r = x @ w + b - y
        gw, gb = nx.autograd.grad(0.5 * (r * r).sum(), [w, b], create_graph=True)
        return [gw + LAM * (w - theta), gb + LAM * b]

    th = RNG.normal(size=D)
    a = np.concatenate([X, np.ones((N, 1))], 1)
    reg = np.concatenate([th, [0.0]])
    exact = np.linalg.solve(a.T @ a + LAM * np.eye(D + 1), a.T @ Y + LAM * reg)
    t, unused = leaf(th), leaf([1.0])
    w, b = implicit_grad(optimality, [nx.tensor(exact[:D]), nx.tensor(exact[D:])], [t, unused], cg_steps=D + 1)
    (w.sum() + 3 * b.sum()).backward()
    m = np.linalg.inv(a.T @ a + LAM * np.eye(D + 1)) * LAM  # d solution / d reg
    np.testing.assert_allclose(t.grad.numpy(), (m.T @ np.r_[np.ones(D), 3.0])[:D], rtol=1e-9)
    assert unused.grad is None
    np.testing.assert_array_equal(w.detach().numpy(), exact[:D])  # the value passes through


def test_memory_does_not_depend_on_how_the_solution_was_found():
    """The graph above the solution is one node whatever solved it: the solver's steps leave nothing behind."""
    t = leaf(RNG.normal(size=D))
    w = t.detach()
    for _ in range(50):
        w = w - 0.01 * (nx.tensor(X).T @ (nx.tensor(X) @ w - nx.tensor(Y)) + LAM * (w - t.detach()))
    out = implicit_grad(ridge_optimality, w, [nx.tensor(X), nx.tensor(Y), t])
    assert out.grad_fn is not None and [p for p in out.grad_fn.parents] == [t]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_conjugate_gradient_solves_a_positive_definite_system(dtype):
    a = X.T @ X + np.eye(D)
    b = RNG.normal(size=D)
    at = nx.tensor(a, dtype=dtype)
    (x,) = conjugate_gradient(lambda v: [at @ v[0]], [nx.tensor(b, dtype=dtype)], D)
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(a, b), rtol=1e-3 if dtype == "float32" else 1e-10)
    (zero,) = conjugate_gradient(lambda v: [at @ v[0]], [nx.zeros(D, dtype=dtype)], 3)  # r = 0: no 0/0
    assert np.array_equal(zero.numpy(), np.zeros(D))


def test_bad_arguments_name_the_problem():
    t = leaf(RNG.normal(size=D))
    w = nx.zeros(D, dtype=nx.float64)
    with pytest.raises(ValueError, match="cg_steps"):
        implicit_grad(ridge_optimality, w, [t], cg_steps=0)
    with pytest.raises(TypeError, match=r"solution\[0\] must be a floating-point"):
        implicit_grad(ridge_optimality, nx.zeros(D, dtype=nx.int64), [t])
    with pytest.raises(TypeError, match="optimality must be callable"):
        implicit_grad(None, w, [t])
    with pytest.raises(ValueError, match="share dim 0"):
        implicit_grad(ridge_optimality, [nx.zeros(2, 3), nx.zeros(3, 3)], [t], per_sample=True)
    out = implicit_grad(lambda ws, ins: [ws[0].sum()], w, [t])
    with pytest.raises(ValueError, match="one residual per solution tensor"):
        out.sum().backward()


def _ridge(ws, inputs):
    x, y = inputs
    return [x.T @ (x @ ws[0] - y) + 0.5 * ws[0]]


def test_zero_sizes_give_zero_size_or_zero_gradients():
    """No rows: the inner problem is 0.5 |w|^2 alone, whose root does not move with the (empty) data; no
    features: an empty solution passes nothing back."""
    x, y = nx.randn(0, 3, dtype=nx.float64, requires_grad=True), nx.randn(0, dtype=nx.float64, requires_grad=True)
    implicit_grad(_ridge, nx.zeros(3, dtype=nx.float64), [x, y]).sum().backward()
    assert x.grad.shape == (0, 3) and y.grad.shape == (0,)
    x, y = nx.randn(5, 0, dtype=nx.float64, requires_grad=True), nx.randn(5, dtype=nx.float64, requires_grad=True)
    implicit_grad(_ridge, nx.zeros(0, dtype=nx.float64), [x, y]).sum().backward()
    assert x.grad.shape == (5, 0) and not y.grad.numpy().any()


def test_nan_in_the_inputs_reaches_their_gradients():
    """A NaN among the inputs makes the linear system NaN: the gradients say so (NaN), never a finite number."""
    x = nx.randn(5, 3, dtype=nx.float64)
    x[0, 0] = float("nan")
    x.requires_grad_()
    y = nx.randn(5, dtype=nx.float64, requires_grad=True)
    implicit_grad(_ridge, nx.zeros(3, dtype=nx.float64), [x, y]).sum().backward()
    assert np.isnan(x.grad.numpy()).all() and np.isnan(y.grad.numpy()).all()
