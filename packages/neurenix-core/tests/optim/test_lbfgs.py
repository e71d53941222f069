"""LBFGS: its first two iterations against the published formulas (NumPy, float64), minimising Rosenbrock and a
least-squares problem to tolerance with and without the strong-Wolfe line search, the max_iter/max_eval and
tolerance stops, the state_dict round trip, and argument errors."""

from __future__ import annotations

import numpy as np
import pytest

import neurenix as nx
from neurenix import optim

RNG = np.random.default_rng(0)
X, Y = RNG.standard_normal((20, 3)), RNG.standard_normal((20, 2))
LINE_SEARCHES = [None, "strong_wolfe"]


def rosenbrock(w):
    return 100 * (w[1] - w[0] ** 2) ** 2 + (1 - w[0]) ** 2


class Problem:
    """Parameters, an optimizer over them, and a closure that counts its calls."""

    def __init__(self, loss_fn, *starts, dtype=nx.float64, **cfg):
        self.params = [nx.tensor(np.asarray(s, dtype=np.float64), dtype=dtype, requires_grad=True) for s in starts]
        self.opt = optim.LBFGS(self.params, **cfg)
        self.loss_fn, self.calls = loss_fn, 0

    def closure(self):
        self.calls += 1
        self.opt.zero_grad()
        loss = self.loss_fn(*self.params)
        loss.backward()
        return loss

    def step(self):
        return self.opt.step(self.closure)

    @property
    def state(self):
        return self.opt.state[self.params[0]]


def least_squares(w, b):
    r = nx.tensor(X) @ w + b - nx.tensor(Y)
    return (r * r).sum()


def _lstsq():
    sol = np.linalg.lstsq(np.hstack([X, np.ones((20, 1))]), Y, rcond=None)[0]
    return sol[:3], sol[3]


@pytest.mark.parametrize("line_search_fn", LINE_SEARCHES)
def test_minimises_rosenbrock(line_search_fn):
    p = Problem(rosenbrock, [-1.2, 1.0], line_search_fn=line_search_fn, max_iter=100)
    first = p.step()
    assert first.item() == pytest.approx(24.2)  # the loss at the start, as PyTorch returns it
    np.testing.assert_allclose(p.params[0].numpy(), [1.0, 1.0], atol=1e-4)
    assert p.state["func_evals"] == p.calls < 150


@pytest.mark.parametrize("line_search_fn", LINE_SEARCHES)
def test_solves_least_squares_over_two_parameters(line_search_fn):
    # (the default tolerance_change stops where the loss changes by under 1e-9: some 1e-7 from the solution)
    p = Problem(least_squares, np.zeros((3, 2)), np.zeros(2), line_search_fn=line_search_fn, tolerance_grad=1e-10,
                tolerance_change=0)
    p.step()
    assert np.abs(np.concatenate([q.grad.numpy().reshape(-1) for q in p.params])).max() <= 1e-10
    w, b = _lstsq()
    np.testing.assert_allclose(p.params[0].numpy(), w, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(p.params[1].numpy(), b, rtol=1e-9, atol=1e-11)


def test_float32_parameters():
    p = Problem(least_squares, np.zeros((3, 2)), np.zeros(2), dtype=nx.float32, tolerance_change=1e-6)
    for _ in range(3):
        p.step()
    assert p.params[0].dtype == nx.float32 and p.state["d"].dtype == nx.float32
    np.testing.assert_allclose(p.params[0].numpy(), _lstsq()[0], atol=1e-3)


def test_first_iterations_follow_the_published_formulas():
    """Iteration 1: ``-min(1, 1/|g|_1) * lr * g``. Iteration 2: ``-H g`` with the BFGS update of
    ``H0 = (y.s / y.y) I`` by the pair (s, y) (Nocedal & Wright, eqs. 7.19 and 7.20), at step ``lr``."""
    a = np.array([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])
    c = np.array([1.0, -2.0, 0.5])
    x0, lr = np.array([0.4, 0.3, -0.2]), 0.7
    p = Problem(lambda w: 0.5 * w @ nx.tensor(a) @ w - nx.tensor(c) @ w, x0, lr=lr, max_iter=2, max_eval=10)
    p.step()

    def grad(x):
        return a @ x - c

    g0 = grad(x0)
    x1 = x0 - min(1, 1 / np.abs(g0).sum()) * lr * g0
    s, y = x1 - x0, grad(x1) - grad(x0)
    rho, eye = 1 / (y @ s), np.eye(3)
    h = (eye - rho * np.outer(s, y)) @ ((y @ s) / (y @ y) * eye) @ (eye - rho * np.outer(y, s)) + rho * np.outer(s, s)
    x2 = x1 - lr * h @ grad(x1)
    np.testing.assert_allclose(p.params[0].numpy(), x2, rtol=1e-12)
    assert p.calls == 2 and p.state["n_iter"] == 2  # no evaluation after the last iteration


@pytest.mark.parametrize("max_iter, max_eval, calls, n_iter", [
    (4, 100, 4, 4),  # max_iter iterations; the last one is not evaluated
    (10, 2, 2, 1),  # the evaluation of iteration 1 reaches max_eval
    (3, None, 3, 2),  # max_eval defaults to max_iter * 5 // 4 = 3
])
def test_max_iter_and_max_eval_bound_one_step(max_iter, max_eval, calls, n_iter):
    p = Problem(rosenbrock, [-1.2, 1.0], max_iter=max_iter, max_eval=max_eval)
    p.step()
    assert (p.calls, p.state["n_iter"], p.state["func_evals"]) == (calls, n_iter, calls)
    p.step()
    assert p.state["n_iter"] == 2 * n_iter  # counted over steps


@pytest.mark.parametrize("max_eval", [2, 6, 13])
def test_max_eval_bounds_the_line_search(max_eval):
    """The search takes at most what is left of max_eval after its first trial, so a step makes at most one
    evaluation more than max_eval, as PyTorch's (lr=50: every search needs several trials)."""
    p = Problem(rosenbrock, [-1.2, 1.0], max_iter=50, max_eval=max_eval, lr=50, line_search_fn="strong_wolfe")
    p.step()
    assert p.calls == p.state["func_evals"] and max_eval <= p.calls <= max_eval + 1


def test_defaults_as_pytorchs():
    opt = optim.LBFGS([nx.zeros(2, requires_grad=True)])
    assert opt.defaults == dict(lr=1, max_iter=20, max_eval=25, tolerance_grad=1e-7, tolerance_change=1e-9,
                                history_size=100, line_search_fn=None)
    assert optim.LBFGS([nx.zeros(2, requires_grad=True)], max_iter=8).defaults["max_eval"] == 10


@pytest.mark.parametrize("line_search_fn", LINE_SEARCHES)
def test_a_stationary_point_stops_at_once(line_search_fn):
    p = Problem(rosenbrock, [1.0, 1.0], line_search_fn=line_search_fn)
    assert p.step().item() == 0.0
    assert p.calls == 1 and p.state["n_iter"] == 0 and p.params[0].tolist() == [1.0, 1.0]


def test_tolerance_grad_stops_the_iterations():
    p = Problem(least_squares, np.zeros((3, 2)), np.zeros(2), tolerance_grad=1e-2, max_iter=100)
    p.step()
    grads = np.concatenate([q.grad.numpy().reshape(-1) for q in p.params])
    assert np.abs(grads).max() <= 1e-2 and p.state["n_iter"] < 100


def test_tolerance_change_stops_the_iterations():
    p = Problem(rosenbrock, [-1.2, 1.0], tolerance_change=1e3, max_iter=100)
    p.step()
    assert p.state["n_iter"] == 1  # the loss changed by less than 1e3


@pytest.mark.parametrize("history_size", [1, 3])
def test_history_holds_at_most_history_size_pairs(history_size):
    p = Problem(rosenbrock, [-1.2, 1.0], history_size=history_size, max_iter=10)
    p.step()
    assert len(p.state["old_dirs"]) == len(p.state["old_stps"]) == len(p.state["ro"]) == history_size


@pytest.mark.parametrize("line_search_fn", LINE_SEARCHES)
def test_state_dict_round_trip(line_search_fn):
    a = Problem(least_squares, RNG.standard_normal((3, 2)), np.zeros(2), max_iter=3, line_search_fn=line_search_fn)
    a.step()
    saved = a.opt.state_dict()
    assert set(saved["state"][0]) == {"func_evals", "n_iter", "d", "t", "old_dirs", "old_stps", "ro", "al", "H_diag",
                                      "prev_flat_grad", "prev_loss"}
    b = Problem(least_squares, *[q.numpy() for q in a.params], max_iter=3, line_search_fn=line_search_fn)
    b.opt.load_state_dict(saved)
    a.step()
    a.step()  # the saved dict is a copy: these steps do not change it
    b.step()
    b.step()
    for p, q in zip(a.params, b.params):
        np.testing.assert_array_equal(p.numpy(), q.numpy())
    assert (a.state["n_iter"], a.state["func_evals"]) == (b.state["n_iter"], b.state["func_evals"])


def test_load_state_dict_refuses_state_of_another_size():
    a = Problem(rosenbrock, [-1.2, 1.0], max_iter=3)
    a.step()
    b = Problem(lambda w: (w * w).sum(), [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="of shape \\(2,\\) does not fit the parameters' 3 elements"):
        b.opt.load_state_dict(a.opt.state_dict())


@pytest.mark.parametrize("make, error, match", [
    (lambda w, v: optim.LBFGS([{"params": [w]}, {"params": [v]}]), ValueError, "parameter groups"),
    (lambda w, v: optim.LBFGS([w]).add_param_group({"params": [v]}), ValueError, "parameter groups"),
    (lambda w, v: optim.LBFGS([w], line_search_fn="wolfe"), ValueError, "line_search_fn must be None or "),
    (lambda w, v: optim.LBFGS([w], max_iter=0), ValueError, "max_iter must be at least 1"),
    (lambda w, v: optim.LBFGS([w], max_iter=2.5), TypeError, "max_iter must be an int"),
    (lambda w, v: optim.LBFGS([w], history_size=0), ValueError, "history_size must be at least 1"),
    (lambda w, v: optim.LBFGS([w], lr=-1), ValueError, "lr must be at least 0"),
    (lambda w, v: optim.LBFGS([w], tolerance_grad="x"), TypeError, "tolerance_grad must be a number"),
    (lambda w, v: optim.LBFGS([w]).step(), TypeError, "closure"),
    (lambda w, v: optim.LBFGS([w]).step(None), TypeError, "closure must be a callable"),
    (lambda w, v: optim.LBFGS([w]).step(lambda: None), TypeError, "closure must return the loss"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_arguments_name_the_problem(make, error, match):
    with pytest.raises(error, match=match):
        make(nx.zeros(2, requires_grad=True), nx.zeros(1, requires_grad=True))
