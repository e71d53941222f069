"""Cumulative sums and products along an axis, composed from slicing, an elementwise op and ``cat``.

A Hillis-Steele scan: ceil(log2(n)) rounds, each combining every entry with the one ``2**k`` before it.
Every step is a differentiable op, so gradients of any order come for free (cumprod's too, zeros
included, which ``exp(cumsum(log(x)))`` would not give).
"""

from __future__ import annotations

from ._operands import Tensor, normalize_dim, not_a_tensor
from .elementwise import add, mul
from .joining import cat
from .reduce import accumulated


def _scan(x: Tensor, dim: int, combine, op: str, dtype) -> Tensor:
    try:
        nd = x.ndim
    except AttributeError:
        raise not_a_tensor(op, x) from None
    axis = normalize_dim(dim, nd, op)
    x = accumulated(x, dtype)
    if nd == 0:
        return x * 1
    n, lead = x.shape[axis], (slice(None),) * axis
    shift = 1
    while shift < n:
        head = x[lead + (slice(0, shift),)]
        tail = combine(x[lead + (slice(shift, None),)], x[lead + (slice(0, n - shift),)])
        x = cat([head, tail], axis)
        shift *= 2
    return x if shift > 1 else x * 1  # a new tensor, never a view of the input


def cumsum(x: Tensor, dim: int, dtype=None) -> Tensor:
    """Running sums along ``dim`` (bool and integer inputs give int64)."""
    return _scan(x, dim, add, "cumsum", dtype)


def cumprod(x: Tensor, dim: int, dtype=None) -> Tensor:
    """Running products along ``dim`` (differentiable, zeros included)."""
    return _scan(x, dim, mul, "cumprod", dtype)
