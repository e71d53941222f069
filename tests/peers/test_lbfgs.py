"""neurenix's LBFGS follows torch.optim.LBFGS step by step (float64, to rounding: a dot product may differ in its
last bit): the parameters, the returned loss and the iteration and evaluation counts after every ``step``, on a
quadratic over two parameters and on Rosenbrock, with and without the strong-Wolfe line search; and its state dict
holds what PyTorch's holds."""

from __future__ import annotations

import numpy as np
import pytest

import neurenix as nx

RNG = np.random.default_rng(0)
_M = RNG.standard_normal((6, 6))
A = _M @ _M.T + 0.5 * np.eye(6)  # symmetric positive definite, condition number in the hundreds
C = RNG.standard_normal(6)


def quadratic(lib, w, b):
    x = lib.cat([w.reshape(-1), b])
    return 0.5 * x @ lib.tensor(A) @ x - lib.tensor(C) @ x


def rosenbrock(lib, w):
    return 100 * (w[1] - w[0] ** 2) ** 2 + (1 - w[0]) ** 2


PROBLEMS = {"quadratic": (quadratic, [np.full((2, 2), 0.3), np.array([1.0, -1.0])]),
            "rosenbrock": (rosenbrock, [np.array([-1.2, 1.0])])}
CASES = [
    ("quadratic", dict(max_iter=3)),
    ("quadratic", dict(max_iter=4, history_size=2, lr=0.5)),
    ("quadratic", dict(max_iter=3, line_search_fn="strong_wolfe")),
    ("rosenbrock", dict(max_iter=4)),
    ("rosenbrock", dict(max_iter=5, history_size=3, max_eval=6)),
    ("rosenbrock", dict(max_iter=4, line_search_fn="strong_wolfe")),
    ("rosenbrock", dict(max_iter=6, lr=0.8, history_size=2, line_search_fn="strong_wolfe")),
    # steps far too long or short for the line search: the zoom's safeguards, extrapolation without a cubic minimum
    ("quadratic", dict(max_iter=6, lr=30, line_search_fn="strong_wolfe")),
    ("rosenbrock", dict(max_iter=6, lr=50, line_search_fn="strong_wolfe")),
    ("rosenbrock", dict(max_iter=6, lr=0.01, line_search_fn="strong_wolfe")),
]


def _trajectory(lib, problem: str, cfg: dict, steps: int) -> list:
    fn, starts = PROBLEMS[problem]
    params = [lib.tensor(s, dtype=lib.float64, requires_grad=True) for s in starts]
    opt = lib.optim.LBFGS(params, **cfg)

    def closure():
        opt.zero_grad()
        loss = fn(lib, *params)
        loss.backward()
        return loss

    out = []
    for _ in range(steps):
        loss = opt.step(closure).item()
        state = opt.state[params[0]]
        out.append(([p.detach().numpy().copy() for p in params], loss, state["n_iter"], state["func_evals"]))
    return out


@pytest.mark.parametrize("problem, cfg", CASES, ids=[f"{p}-{i}" for i, (p, _) in enumerate(CASES)])
def test_iterates_match_pytorch(torch, problem, cfg):
    ours, theirs = _trajectory(nx, problem, cfg, 6), _trajectory(torch, problem, cfg, 6)
    for step, ((params, loss, n_iter, evals), (t_params, t_loss, t_iter, t_evals)) in enumerate(zip(ours, theirs)):
        where = f"{problem} {cfg}: step {step + 1}"
        assert (n_iter, evals) == (t_iter, t_evals), where
        assert loss == pytest.approx(t_loss, rel=1e-8, abs=1e-12), where
        for a, b in zip(params, t_params):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10, err_msg=where)


def _state_dict_after_a_step(lib) -> dict:
    w = lib.tensor([-1.2, 1.0], dtype=lib.float64, requires_grad=True)
    opt = lib.optim.LBFGS([w], max_iter=4, history_size=3)

    def closure():
        opt.zero_grad()
        loss = rosenbrock(lib, w)
        loss.backward()
        return loss

    opt.step(closure)
    return opt.state_dict()


def test_state_dict_holds_what_pytorchs_holds(torch):
    dicts = [_state_dict_after_a_step(lib) for lib in (nx, torch)]
    ours, theirs = dicts
    assert set(ours["state"][0]) == set(theirs["state"][0])
    assert ours["param_groups"] == theirs["param_groups"]
    for key in ("d", "prev_flat_grad"):
        np.testing.assert_allclose(ours["state"][0][key].numpy(), theirs["state"][0][key].numpy(), rtol=1e-10)
    for key in ("old_dirs", "old_stps"):
        for a, b in zip(ours["state"][0][key], theirs["state"][0][key], strict=True):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10)
    for key in ("ro", "H_diag", "prev_loss", "t", "n_iter", "func_evals"):
        np.testing.assert_allclose(np.asarray(ours["state"][0][key], dtype=float),
                                   np.asarray([float(v) for v in np.atleast_1d(theirs["state"][0][key])]
                                              if key == "ro" else float(theirs["state"][0][key])), rtol=1e-10)
