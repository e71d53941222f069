"""Vector norms and distances: ``norm``, ``cdist``, composed from reductions and elementwise ops.

Where a norm is 0 its gradient is 0 (as PyTorch's subgradient), not NaN: the root is taken of a value
that a ``where`` keeps away from 0 there, so gradients of every order stay finite.
"""

from __future__ import annotations

import math

from ..arguments import number
from ..errors import ShapeError
from ._operands import Tensor, normalize_axes, not_a_tensor
from .elementwise import abs, cast, pow, sqrt, where
from .reduce import _float, amax, amin, sum


def _root(total: Tensor, p: float) -> Tensor:
    """``total ** (1 / p)`` with a zero gradient where ``total`` is 0."""
    zero = total == 0
    safe = where(zero, 1.0, total)
    return where(zero, 0.0, sqrt(safe) if p == 2 else pow(safe, 1.0 / p))


def _order(p, op: str) -> float:
    if p is None or p == "fro":
        return 2.0
    if isinstance(p, str):
        raise ValueError(f"{op}: p must be a number or 'fro', got {p!r} ('nuc' is not supported)")
    return number(p, "p", op, finite=False)


def norm(x: Tensor, p=2, dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """The vector p-norm of ``x`` over ``dim`` (all elements if None): p = 2 (also None or 'fro'), 1, any
    positive number, inf (largest ``|x|``), -inf (smallest) or 0 (the count of nonzeros)."""
    try:
        nd = x.ndim
    except AttributeError:
        raise not_a_tensor("norm", x) from None
    if dtype is not None:
        x = cast(x, dtype)
    x = _float(x, "norm")
    p = _order(p, "norm")
    axes = normalize_axes(dim, nd, "norm")
    if p == math.inf:
        return amax(abs(x), axes, keepdim)
    if p == -math.inf:
        return amin(abs(x), axes, keepdim)
    if p == 0:
        return sum(x != 0, axes, keepdim).to(x.dtype)
    if p < 0:
        raise ValueError(f"norm: p must be positive, inf, -inf or 0, got {p}")
    if p == 1:
        return sum(abs(x), axes, keepdim)
    return _root(sum(x * x if p == 2 else pow(abs(x), p), axes, keepdim), p)


def cdist(x1: Tensor, x2: Tensor, p: float = 2.0) -> Tensor:
    """The p-norm distance between each row of ``x1`` (..., P, M) and each row of ``x2`` (..., R, M):
    shape (..., P, R)."""
    for name, t in (("x1", x1), ("x2", x2)):
        if not isinstance(t, Tensor):
            raise not_a_tensor("cdist", t)
        if t.ndim < 2:
            raise ShapeError(f"cdist: {name} must have at least 2 dims (..., rows, features), got shape {t.shape}")
    if x1.shape[-1] != x2.shape[-1]:
        raise ShapeError(f"cdist: x1 {x1.shape} and x2 {x2.shape} have different feature sizes")
    p = number(p, "p", "cdist", minimum=0.0, finite=False)
    return norm(x1.unsqueeze(-2) - x2.unsqueeze(-3), p, -1)
