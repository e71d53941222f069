"""``einsum``: Einstein summation, planned as a chain of pairwise contractions.

Operands are contracted left to right. Before each product, labels no later operand or the output
needs are summed away; the two operands are then permuted and reshaped to (batch, rows, inner) and
(batch, inner, columns) and multiplied by one batched ``matmul``. Every step is a differentiable op.
"""

from __future__ import annotations

from ..errors import ShapeError
from ._operands import Tensor
from .linalg import matmul
from .reduce import sum


def _parse(equation: str, operands: tuple) -> tuple[list, str]:
    if not isinstance(equation, str):
        raise TypeError(f"einsum: the equation must be a string, got {type(equation).__name__}")
    eq = equation.replace(" ", "")
    if "." in eq:
        raise ValueError(f"einsum: ellipsis ('...') is not supported, in {equation!r}")
    lhs, arrow, out = eq.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(operands):
        raise ValueError(f"einsum: {equation!r} names {len(inputs)} operand(s), got {len(operands)}")
    labels = "".join(inputs)
    if not arrow:
        out = "".join(sorted(c for c in set(labels) if labels.count(c) == 1))
    for term in (*inputs, out):
        if not all(c.isalpha() for c in term):
            raise ValueError(f"einsum: subscripts must be letters, got {term!r} in {equation!r}")
        if len(set(term)) != len(term):
            raise ValueError(f"einsum: repeated subscript in {term!r} of {equation!r} (diagonals are not supported)")
    if set(out) - set(labels):
        raise ValueError(f"einsum: output subscripts {out!r} do not all appear in the inputs of {equation!r}")
    return inputs, out


def _sizes(inputs: list, operands: tuple) -> dict:
    sizes: dict = {}
    for term, t in zip(inputs, operands):
        if not isinstance(t, Tensor):
            raise TypeError(f"einsum: operands must be tensors, got {type(t).__name__}")
        if t.ndim != len(term):
            raise ShapeError(f"einsum: subscripts {term!r} name {len(term)} dims, the operand has shape {t.shape}")
        for c, n in zip(term, t.shape):
            if sizes.setdefault(c, n) != n:
                raise ShapeError(f"einsum: subscript {c!r} has sizes {sizes[c]} and {n}")
    return sizes


def _drop(t: Tensor, term: str, keep: set) -> tuple[Tensor, str]:
    """Sum away the labels of ``term`` not in ``keep``."""
    axes = tuple(i for i, c in enumerate(term) if c not in keep)
    if not axes:
        return t, term
    return sum(t, axes), "".join(c for c in term if c in keep)


def _arrange(t: Tensor, term: str, groups: tuple, sizes: dict) -> Tensor:
    """``t`` permuted to the label order of ``groups`` and reshaped to one axis per group."""
    order = "".join(groups)
    t = t.permute(tuple(term.index(c) for c in order))
    shape = []
    for g in groups:
        n = 1
        for c in g:
            n *= sizes[c]
        shape.append(n)
    return t.reshape(tuple(shape))


def _pair(a: Tensor, ta: str, b: Tensor, tb: str, keep: set, sizes: dict) -> tuple[Tensor, str]:
    """Contract two operands, keeping the labels in ``keep``."""
    a, ta = _drop(a, ta, keep | set(tb))
    b, tb = _drop(b, tb, keep | set(ta))
    batch = "".join(c for c in ta if c in tb and c in keep)
    inner = "".join(c for c in ta if c in tb and c not in keep)
    rows = "".join(c for c in ta if c not in tb)
    cols = "".join(c for c in tb if c not in ta)
    out = matmul(_arrange(a, ta, (batch, rows, inner), sizes), _arrange(b, tb, (batch, inner, cols), sizes))
    term = batch + rows + cols
    return out.reshape(tuple(sizes[c] for c in term)), term


def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation over ``operands``, as ``neurenix.einsum("bij,bjk->bik", a, b)`` (also with the
    operands as one list). Each label names one axis per operand; labels missing from the output (after
    ``->``, or those appearing once if there is no arrow) are summed. Ellipsis and diagonals (a label
    repeated within one operand) are not supported."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    inputs, out = _parse(equation, operands)
    sizes = _sizes(inputs, operands)
    t, term = operands[0], inputs[0]
    for i in range(1, len(operands)):
        keep = set(out).union(*inputs[i + 1:])
        t, term = _pair(t, term, operands[i], inputs[i], keep, sizes)
    t, term = _drop(t, term, set(out))
    if term == out:
        return t if len(operands) > 1 or t is not operands[0] else t * 1
    return t.permute(tuple(term.index(c) for c in out))
