"""L-BFGS (Nocedal & Wright, Numerical Optimization, 2nd ed., Algorithms 7.4 and 7.5) with PyTorch's API and
iterates: ``step(closure)`` runs up to ``max_iter`` iterations, optionally with a strong-Wolfe line search
(Algorithms 3.5 and 3.6, cubic interpolation)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ..arguments import integer, number
from ..autograd.grad_mode import enable_grad, no_grad
from ..ops.joining import cat
from ..ops.transfer import to_device
from ..tensor import Tensor
from ._steps import grad_of
from .optimizer import Optimizer

_LINE_SEARCHES = (None, "strong_wolfe")
# state tensors over all the parameters, flattened into one vector: the last direction and gradient, and the
# curvature pairs (y, s), oldest first
_FLAT = ("d", "prev_flat_grad", "old_dirs", "old_stps")


class LBFGS(Optimizer):
    """Limited-memory BFGS over one parameter group, as PyTorch's ``torch.optim.LBFGS``.

    Each ``step(closure)`` re-evaluates the loss through ``closure`` (which zeroes the gradients, computes the
    loss, calls ``backward()`` and returns the loss) and runs at most ``max_iter`` iterations and ``max_eval``
    evaluations (default ``max_iter * 5 // 4``). An iteration's direction comes from the two-loop recursion over
    the last ``history_size`` curvature pairs; its step is ``lr`` (on the very first iteration
    ``min(1, 1 / |g|_1) * lr``), or, with ``line_search_fn="strong_wolfe"``, the one a strong-Wolfe line search
    finds from it. It stops early when the largest gradient entry is at most ``tolerance_grad``, or a step or
    the change of the loss is below ``tolerance_change``. The history carries over from one ``step`` to the next
    and is part of the ``state_dict``. Returns the loss of the first evaluation.
    """

    def __init__(self, params, lr: float = 1, max_iter: int = 20, max_eval: int | None = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: str | None = None):
        max_iter = integer(max_iter, "max_iter", "LBFGS", minimum=1)
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        super().__init__(params, dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                                      tolerance_change=tolerance_change, history_size=history_size,
                                      line_search_fn=line_search_fn))
        self._params = self.param_groups[0]["params"]

    def add_param_group(self, group: dict) -> None:
        if self.param_groups:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups): pass all the parameters "
                             "in one group, as in PyTorch")
        super().add_param_group(group)

    def _check_hyper(self, group: dict) -> None:
        number(group["lr"], "lr", "LBFGS", minimum=0.0)
        for key in ("max_iter", "max_eval", "history_size"):
            group[key] = integer(group[key], key, "LBFGS", minimum=1)
        for key in ("tolerance_grad", "tolerance_change"):
            number(group[key], key, "LBFGS", minimum=0.0)
        if group["line_search_fn"] not in _LINE_SEARCHES:
            raise ValueError(f"LBFGS: line_search_fn must be None or 'strong_wolfe', got {group['line_search_fn']!r}")

    def step(self, closure: Callable):
        """Run the iterations (see the class); ``closure`` is required, as in PyTorch."""
        if not callable(closure):
            raise TypeError("LBFGS.step: closure must be a callable that re-evaluates the model and returns the loss "
                            f"(it calls backward()), got {type(closure).__name__}")
        self._opt_called = True
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        orig_loss, loss = self._evaluate(closure)
        state["func_evals"] += 1
        with no_grad():
            g = self._flat_grad()
            if _max_abs(g) > self.param_groups[0]["tolerance_grad"]:
                self._iterate(closure, state, loss, g)
        return orig_loss

    def _iterate(self, closure: Callable, state: dict, loss: float, g: Tensor) -> None:
        """The iterations of one ``step``, from the loss and flat gradient ``g`` at the current parameters."""
        group = self.param_groups[0]
        max_iter, max_eval, tol_change = group["max_iter"], group["max_eval"], group["tolerance_change"]
        d, t, prev_g = state.get("d"), state.get("t"), state.get("prev_flat_grad")
        evals, n_iter = 1, 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:  # the very first iteration: steepest descent, an empty history
                state.update(old_dirs=[], old_stps=[], ro=[], al=[], H_diag=1.0)
                d = -g
            else:
                _remember(state, g - prev_g, d * t, group["history_size"])
                d = _two_loop(state, g)
            prev_g, prev_loss = g, loss
            # the first step is scaled down by the gradient's size: the history says nothing of curvature yet
            t = min(1.0, 1.0 / float(g.abs().sum())) * group["lr"] if state["n_iter"] == 1 else group["lr"]
            gtd = _dot(g, d)
            if gtd > -tol_change:  # not a descent direction (to within tolerance_change): stop
                break
            loss, g, t, used = self._advance(closure, loss, g, d, t, gtd, max_eval - evals, n_iter == max_iter)
            evals += used
            state["func_evals"] += used
            if (n_iter == max_iter or evals >= max_eval or _max_abs(g) <= group["tolerance_grad"]
                    or _max_abs(d) * abs(t) <= tol_change or abs(loss - prev_loss) < tol_change):
                break
        state.update(d=d, t=t, prev_flat_grad=prev_g, prev_loss=prev_loss)

    def _advance(self, closure: Callable, loss: float, g: Tensor, d: Tensor, t: float, gtd: float, budget: int,
                 last: bool) -> tuple:
        """Move the parameters along ``d``: by ``t``, or by the step the line search finds from ``t`` (with at most
        ``budget`` trials after its first). Returns the loss, gradient and step there, and the evaluations used."""
        if self.param_groups[0]["line_search_fn"] == "strong_wolfe":
            start = [p.detach().clone() for p in self._params]
            loss, g, t, used = _strong_wolfe(partial(self._try_step, closure, start, d=d), t, d, loss, g, gtd,
                                             max_ls=budget)
            self._move(t, d)
            return loss, g, t, used
        self._move(t, d)
        if last:  # no evaluation after the last iteration: the next step makes one
            return loss, g, t, 0
        return self._evaluate(closure)[1], self._flat_grad(), t, 1

    # -- parameters as one flat vector ------------------------------------------------------------------------
    @staticmethod
    def _evaluate(closure: Callable) -> tuple:
        """The closure's loss, as it returns it and as a float; computed with gradients enabled."""
        with enable_grad():
            loss = closure()
        if loss is None or isinstance(loss, (bool, str)):
            raise _not_a_loss(loss)
        try:
            return loss, float(loss)
        except (TypeError, ValueError, RuntimeError):
            raise _not_a_loss(loss) from None

    def _flat_grad(self) -> Tensor:
        return cat([p.new_zeros(p.numel()) if p.grad is None else grad_of(p).reshape(-1) for p in self._params])

    def _move(self, t: float, d: Tensor) -> None:
        """``params += t * d``, ``d`` cut into the parameters' shapes."""
        offset = 0
        for p in self._params:
            n = p.numel()
            p._set((p + d[offset:offset + n].reshape(p.shape) * t)._data, "LBFGS.step")
            offset += n

    def _try_step(self, closure: Callable, start: list, t: float, d: Tensor) -> tuple:
        """(loss, flat gradient) at ``start + t * d``; the parameters are put back at ``start`` after."""
        self._move(t, d)
        loss = self._evaluate(closure)[1]
        g = self._flat_grad()
        for p, x in zip(self._params, start):
            p._set(x._data, "LBFGS.step")
        return loss, g

    # -- state ------------------------------------------------------------------------------------------------
    def _restored(self, key: str, v, p: Tensor):
        """Saved state: the flat vectors (and lists of them) checked against the parameters' total size; lists
        copied, since the history changes in place."""
        if isinstance(v, (list, tuple)):
            return [self._restored(key, u, p) for u in v]
        if key not in _FLAT or not isinstance(v, Tensor):
            return super()._restored(key, v, p)
        size = sum(q.numel() for q in self._params)
        if tuple(v.shape) != (size,):
            raise ValueError(f"load_state_dict: LBFGS state {key!r} of shape {tuple(v.shape)} does not fit the "
                             f"parameters' {size} elements")
        return to_device(v.detach(), p._device).to(p.dtype).clone()


def _not_a_loss(loss) -> TypeError:
    return TypeError("LBFGS.step: closure must return the loss, a single-element tensor or a number; got "
                     f"{type(loss).__name__} {getattr(loss, 'shape', '')}".rstrip())


def _dot(a: Tensor, b: Tensor) -> float:
    return float((a * b).sum())


def _max_abs(a: Tensor) -> float:
    return float(a.abs().max()) if a.numel() else 0.0


def _remember(state: dict, y: Tensor, s: Tensor, history_size: int) -> None:
    """Keep the curvature pair (y, s) if ``y.s`` is positive enough for the update to stay positive definite
    (dropping the oldest beyond ``history_size``), and rescale the initial Hessian guess ``H_diag = y.s / y.y``
    (Nocedal & Wright, eq. 7.20)."""
    ys = _dot(y, s)
    if ys <= 1e-10:
        return
    if len(state["old_dirs"]) == history_size:
        for key in ("old_dirs", "old_stps", "ro"):
            state[key].pop(0)
    state["old_dirs"].append(y)
    state["old_stps"].append(s)
    state["ro"].append(1.0 / ys)
    state["H_diag"] = ys / _dot(y, y)


def _two_loop(state: dict, g: Tensor) -> Tensor:
    """The L-BFGS direction ``-H g`` by the two-loop recursion (Nocedal & Wright, Algorithm 7.4)."""
    ys, ss, ro = state["old_dirs"], state["old_stps"], state["ro"]
    al = [0.0] * len(ys)
    q = -g
    for i in reversed(range(len(ys))):
        al[i] = _dot(ss[i], q) * ro[i]
        q = q - ys[i] * al[i]
    r = q * state["H_diag"]
    for i in range(len(ys)):
        be = _dot(ys[i], r) * ro[i]
        r = r + ss[i] * (al[i] - be)
    state["al"] = al
    return r


def _cubic_minimum(t1: float, f1: float, g1: float, t2: float, f2: float, g2: float,
                   bounds: tuple[float, float] | None = None) -> float:
    """The minimiser of the cubic through (t1, f1) and (t2, f2) with slopes g1 and g2 (Nocedal & Wright,
    eq. 3.59), clipped to ``bounds`` (default: between t1 and t2); their middle where the cubic has none."""
    lo, hi = bounds if bounds is not None else (min(t1, t2), max(t1, t2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (t1 - t2)
    square = d1 * d1 - g1 * g2
    if square < 0:
        return (lo + hi) / 2
    d2 = square ** 0.5
    if t1 <= t2:
        t = t2 - (t2 - t1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        t = t1 - (t1 - t2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(t, lo), hi)


def _strong_wolfe(evaluate: Callable, t: float, d: Tensor, f: float, g: Tensor, gtd: float, c1: float = 1e-4,
                  c2: float = 0.9, tolerance_change: float = 1e-9, max_ls: int = 25) -> tuple:
    """A step ``t`` along ``d`` meeting the strong Wolfe conditions (sufficient decrease ``c1``, curvature
    ``c2``): bracket one by cubic extrapolation (Algorithm 3.5), then zoom in by safeguarded cubic interpolation
    (Algorithm 3.6). ``evaluate(t)`` gives (loss, flat gradient) there. Returns (loss, gradient, t, evaluations)
    at the best point found within ``max_ls`` trials after the first (t = 0, no move, where none decreased the
    loss)."""
    d_norm = _max_abs(d)
    f_new, g_new = evaluate(t)
    gtd_new = _dot(g_new, d)
    prev = (0.0, f, g, gtd)  # points are (t, loss, gradient, directional derivative)
    evals, trials, done, bracket = 1, 0, False, None
    while trials < max_ls:
        point = (t, f_new, g_new, gtd_new)
        if f_new > f + c1 * t * gtd or (trials > 1 and f_new >= prev[1]):  # too far: the minimum is behind
            bracket = [prev, point]
            break
        if abs(gtd_new) <= -c2 * gtd:  # both conditions hold
            bracket, done = [point], True
            break
        if gtd_new >= 0:  # the slope turned: a minimum lies between
            bracket = [prev, point]
            break
        # extrapolate: no further than 10 t, and at least 1% of the last step beyond t
        t = _cubic_minimum(prev[0], prev[1], prev[3], t, f_new, gtd_new, (t + 0.01 * (t - prev[0]), t * 10))
        prev = point
        f_new, g_new = evaluate(t)
        gtd_new = _dot(g_new, d)
        evals, trials = evals + 1, trials + 1
    if bracket is None:
        bracket = [(0.0, f, g, gtd), (t, f_new, g_new, gtd_new)]
    low, high = _ends(bracket)
    stalled = False
    while not done and trials < max_ls:
        if abs(bracket[1][0] - bracket[0][0]) * d_norm < tolerance_change:
            break
        t, stalled = _safeguarded(bracket, stalled)
        f_new, g_new = evaluate(t)
        gtd_new = _dot(g_new, d)
        evals, trials = evals + 1, trials + 1
        point = (t, f_new, g_new, gtd_new)
        if f_new > f + c1 * t * gtd or f_new >= bracket[low][1]:
            bracket[high] = point
            low, high = _ends(bracket)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high][0] - bracket[low][0]) >= 0:
                bracket[high] = bracket[low]
            bracket[low] = point
    t, f_new, g_new, _ = bracket[low]
    return f_new, g_new, t, evals


def _ends(bracket: list) -> tuple[int, int]:
    """(index of the lower-loss end, index of the other)."""
    return (0, 1) if bracket[0][1] <= bracket[-1][1] else (1, 0)


def _safeguarded(bracket: list, stalled: bool) -> tuple[float, bool]:
    """The zoom's next trial: the cubic's minimiser in the bracket, moved 10% of the bracket in from an end it
    comes too close to when the previous trial was close too or it falls outside (so the bracket shrinks)."""
    (t1, f1, _, g1), (t2, f2, _, g2) = bracket
    t = _cubic_minimum(t1, f1, g1, t2, f2, g2)
    lo, hi = min(t1, t2), max(t1, t2)
    eps = 0.1 * (hi - lo)
    if min(hi - t, t - lo) >= eps:
        return t, False
    if not (stalled or t >= hi or t <= lo):
        return t, True
    return (hi - eps if abs(t - hi) < abs(t - lo) else lo + eps), False
