"""Implicit differentiation: the gradient of a solution through the condition it satisfies, not through the
steps that found it.

A solution ``w*`` of ``optimality(w, inputs) = 0`` (the stationarity of an inner problem, say) depends on
``inputs``; by the implicit function theorem ``dw*/dinputs = -(dF/dw)^-1 dF/dinputs`` at ``w*``.
``implicit_grad`` attaches ``w*`` to the graph with that derivative: a backward pass solves
``(dF/dw)^T v = g`` by conjugate gradient on vector-Jacobian products of ``F`` (Hessian-vector products when
``F`` is a gradient), then hands ``-(dF/dinputs)^T v`` on to ``inputs``. How ``w*`` was found (how many
steps, which solver) stores nothing, so memory does not grow with the inner problem's length (iMAML).

Like the rest of this package it knows nothing of Tensor: it works with the tensors' own methods.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from . import grad_mode
from .engine import grad
from .function import Function


def implicit_grad(optimality: Callable, solution, inputs: Sequence, *, cg_steps: int = 20,
                  per_sample: bool = False):
    """``solution`` (a tensor or a sequence of them), differentiable with respect to ``inputs`` as the root
    of ``optimality(solution, inputs)``, by the implicit function theorem.

    ``optimality(ws, inputs)`` takes lists (``ws`` shaped as ``solution``) and returns a list of residuals,
    one per solution tensor and of its shape, that vanish at the solution; it must be differentiable in both
    (for a stationarity condition, compute the gradient with ``create_graph=True``). Its Jacobian in ``ws``
    must be symmetric positive definite (as the Hessian of a strongly convex inner problem is), since the
    linear system is solved by ``cg_steps`` of conjugate gradient: exact after as many steps as ``ws`` has
    elements, in exact arithmetic. ``per_sample=True``: dim 0 of every solution tensor indexes independent
    problems (a task axis), each solved with its own conjugate-gradient coefficients, so that a batch of
    problems gets the gradients each would get alone.

    The solution's value is passed through unchanged (detached from however it was computed). First-order
    gradients only: a backward pass through it with ``create_graph=True`` raises, since the conjugate-gradient
    solve is not itself differentiated.
    """
    single = _is_tensor(solution)
    solution = [solution] if single else list(solution)
    inputs = list(inputs)
    if not callable(optimality):
        raise TypeError(f"implicit_grad: optimality must be callable, got {type(optimality).__name__}")
    for name, group in (("solution", solution), ("inputs", inputs)):
        for i, t in enumerate(group):
            if not _is_tensor(t) or not t.is_floating_point():
                raise TypeError(f"implicit_grad: {name}[{i}] must be a floating-point tensor, got "
                                f"{getattr(t, 'dtype', type(t).__name__)}")
    if type(cg_steps) is not int or cg_steps < 1:
        raise ValueError(f"implicit_grad: cg_steps must be an int >= 1, got {cg_steps!r}")
    if per_sample and any(t.ndim == 0 or t.shape[0] != solution[0].shape[0] for t in solution):
        raise ValueError(f"implicit_grad: per_sample=True needs every solution tensor to share dim 0 (the problems' "
                         f"axis), got shapes {[tuple(t.shape) for t in solution]}")
    out = _Root.apply(optimality, (len(solution), cg_steps, per_sample), *[s.detach() for s in solution], *inputs)
    out = [out] if _is_tensor(out) else list(out)
    return out[0] if single else out


class _Root(Function):
    """The solution as an op of ``inputs``: forward passes it through; backward is the implicit function
    theorem (see ``implicit_grad``)."""

    @staticmethod
    def forward(ctx, optimality, config, *tensors):
        n = config[0]
        ctx.optimality, ctx.config = optimality, config
        ctx.save_for_backward(*tensors)
        outs = [t.clone() for t in tensors[:n]]
        return tuple(outs) if n > 1 else outs[0]

    @staticmethod
    def backward(ctx, *gs):
        n, steps, per_sample = ctx.config
        saved = ctx.saved_tensors
        if grad_mode.is_grad_enabled():  # the engine records this vjp exactly when create_graph is on
            raise RuntimeError(
                "implicit_grad: gradients of second order through an implicit solution are not supported (the "
                "backward pass of implicit_grad was asked to record, create_graph=True); differentiate the inner "
                "problem's steps instead (unrolled, as MAML does) where a higher order is needed")
        inputs = list(saved[n:])
        wanted = [i for i, t in enumerate(inputs) if t.requires_grad]
        with grad_mode.enable_grad():
            ws = [w.detach().requires_grad_() for w in saved[:n]]
            residual = list(ctx.optimality(ws, inputs))
            _check_residual(residual, ws)
            used = [(r, i) for i, r in enumerate(residual) if r.requires_grad]

            def jt(v):  # (dF/dw)^T v
                got = grad([r for r, _ in used], ws, [v[i] for _, i in used], retain_graph=True,
                           allow_unused=True)
                return [w.new_zeros(w.shape) if g is None else g for w, g in zip(ws, got)]

            v = conjugate_gradient(jt, [g if g is not None else w.new_zeros(w.shape) for g, w in zip(gs, ws)],
                                   steps, per_sample)
            found = grad([r for r, _ in used], [inputs[i] for i in wanted], [v[i] for _, i in used],
                         allow_unused=True) if wanted else ()
        out = [None] * len(inputs)
        for i, g in zip(wanted, found):
            out[i] = None if g is None else -g
        return (None, None, *[None] * n, *out)


def _check_residual(residual: list, ws: list) -> None:
    if len(residual) != len(ws) or any(not _is_tensor(r) or r.shape != w.shape for r, w in zip(residual, ws)):
        got = [tuple(r.shape) if _is_tensor(r) else type(r).__name__ for r in residual]
        raise ValueError(f"implicit_grad: optimality must return one residual per solution tensor, of its shape "
                         f"{[tuple(w.shape) for w in ws]}; got {got}")


def conjugate_gradient(apply: Callable, b: list, steps: int, per_sample: bool = False) -> list:
    """``steps`` iterations of conjugate gradient for ``A x = b`` from x = 0, with ``apply(x) = A x`` (symmetric
    positive definite) on lists of tensors. ``per_sample``: dim 0 indexes independent systems. A fixed
    number of steps and no host reads, so that it runs inside a captured program; a residual that reaches 0
    stops the updates (no 0/0)."""
    x = [t.new_zeros(t.shape) for t in b]
    r = list(b)
    p = list(b)
    rr = _dot(r, r, per_sample)
    for _ in range(steps):
        ap = apply(p)
        pap = _dot(p, ap, per_sample)
        alpha = rr / (pap + (pap == 0).to(pap.dtype))  # p = 0 exactly when r = 0: alpha 0, x stays
        x = [xi + _along(alpha, pi) * pi for xi, pi in zip(x, p)]
        r = [ri - _along(alpha, api) * api for ri, api in zip(r, ap)]
        new = _dot(r, r, per_sample)
        beta = new / (rr + (rr == 0).to(rr.dtype))
        p = [ri + _along(beta, pi) * pi for ri, pi in zip(r, p)]
        rr = new
    return x


def _dot(a: list, b: list, per_sample: bool):
    """Sum of elementwise products over the lists: a scalar, or one per dim-0 index."""
    if per_sample:
        return sum((x * y).reshape(x.shape[0], -1).sum(1) for x, y in zip(a, b))
    return sum((x * y).sum() for x, y in zip(a, b))


def _along(c, like):
    """A per-sample coefficient (shape (n,)) shaped to broadcast against ``like``; a scalar as it is."""
    return c.reshape(-1, *[1] * (like.ndim - 1)) if c.ndim == 1 else c


def _is_tensor(x) -> bool:
    return hasattr(x, "_node") and hasattr(x, "_data")
