"""Linear systems and the Cholesky factorization (``neurenix.linalg``): each op calls one kernel (optional in the
contract: core composes it column by column where a backend has none) and records a vjp written with these same
ops, so that gradients of any order follow (second order: MAML-style meta-gradients through a closed-form head).

A failed factorization (a singular matrix, one that is not positive-definite) is reported by the kernel in an
info buffer, which the op reads on the host and turns into a ``LinAlgError``, as PyTorch does (this waits for
the device). A compiled function reads it again at every replay.
"""

from __future__ import annotations

import numpy as np

from ..autograd.grad_mode import state as grad_state
from ..autograd.graph import record
from ..capture import recording
from ..errors import DTypeError, LinAlgError, ShapeError
from ..tensor import tensor
from ._operands import Tensor, _wrap, broadcast_shapes
from .elementwise import where
from .linalg import _same_kind, matmul
from .shape import expand, mT, squeeze, unsqueeze

# -- checks ------------------------------------------------------------------------------------------------------


def _floats(op: str, **named) -> tuple:
    """The operands (keyword name -> tensor), float tensors on one device with one dtype (promoted)."""
    for name, t in named.items():
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__} {t!r:.40}")
        if t._data.dtype.kind != "f":
            raise DTypeError(f"{op}: {name} must be a float32 or float64 tensor, got {t._data.dtype.name} (shape "
                             f"{t.shape}); convert it with .float() or .double()")
    return _same_kind(op, *named.values())


def _square(op: str, name: str, a: Tensor) -> None:
    s = a._data.shape
    if len(s) < 2:
        raise ShapeError(f"{op}: {name} must have at least 2 dimensions (..., n, n), got shape {tuple(s)}")
    if s[-1] != s[-2]:
        raise ShapeError(f"{op}: {name} must be (a batch of) square matrices, but they are {s[-2]} by {s[-1]} "
                         f"(shape {tuple(s)})")


def _fits(op: str, a: Tensor, b: Tensor, shapes: tuple, left: bool) -> None:
    """``b`` (..., n, k) against ``a`` (..., n, n), both as the kernel takes them (transposed for ``left=False``);
    ``shapes`` are the caller's."""
    n = a._data.shape[-1]
    if b._data.shape[-2] != n:
        equation, needs = ("AX = B", "rows") if left else ("XA = B", "columns")
        raise ShapeError(f"{op}: A of shape {shapes[0]} and B of shape {shapes[1]} do not fit the equation {equation} "
                         f"(B needs {n} {needs})")


def _same_batch(op: str, a: Tensor, b: Tensor) -> tuple:
    """``a`` (..., n, n) and ``b`` (..., n, k) expanded to one batch shape (batch axes broadcast)."""
    sa, sb = a._data.shape, b._data.shape
    if sa[:-2] == sb[:-2]:
        return a, b
    batch = broadcast_shapes(sa[:-2], sb[:-2], f"{op} (batch dimensions)")
    return expand(a, *batch, *sa[-2:]), expand(b, *batch, *sb[-2:])


def _empty(shape: tuple) -> bool:
    return 0 in shape


def _zeros(shape: tuple, like: Tensor) -> Tensor:
    dev = like._device
    return _wrap(dev.kernels.full(shape, 0.0, like._data.dtype, dev.index), dev)


def _check_info(info, device, op: str, problem) -> None:
    """Raise a LinAlgError for the first matrix of the batch whose ``info`` is nonzero (``problem(info)`` says
    what went wrong). Recorded as a host step, so that a compiled function checks at every replay."""
    recording.host(_raise_failure, info, device, op, problem)


def _raise_failure(info, device, op: str, problem) -> None:
    values = np.asarray(device.kernels.to_numpy(info))
    failed = np.flatnonzero(values)
    if failed.size:
        i = int(failed[0])
        element = f"(Batch element {i}): " if values.ndim else ""
        raise LinAlgError(f"{op}: {element}{problem(int(values.flat[i]))}")


def _singular(_: int) -> str:
    return "The solver failed because the input matrix is singular."


def _not_positive_definite(order: int) -> str:
    return (f"The factorization could not be completed because the input is not positive-definite (the leading "
            f"minor of order {order} is not positive-definite).")


def _triangle(n: int, upper: bool, strict: bool, like: Tensor) -> Tensor:
    """The bool mask (n, n) of the upper (else lower) triangle, the diagonal left out if ``strict``."""
    ones = np.ones((n, n), bool)
    mask = np.triu(ones, int(strict)) if upper else np.tril(ones, -int(strict))
    return tensor(mask, device=like._device)


# -- solve -------------------------------------------------------------------------------------------------------


def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:  # noqa: N803 - PyTorch's names
    """The solution X of ``A @ X = B`` (``X @ A = B`` with ``left=False``), as ``torch.linalg.solve``.

    ``A`` is (..., n, n); ``B`` is (..., n, k) ((..., k, n) with ``left=False``), or a batch of vectors (..., n)
    (also (n,); row vectors with ``left=False``, which PyTorch refuses for n > 1); batch axes broadcast. Raises
    ``LinAlgError`` for a singular ``A``. Differentiable to any order in both."""
    a, b = _floats("linalg.solve", A=A, B=B)
    shapes = (a.shape, b.shape)
    _square("linalg.solve", "A", a)
    vector = b.ndim == 1 or (b.ndim == a.ndim - 1 and b.shape == a.shape[:-1])
    if vector:
        b = unsqueeze(b, -1 if left else -2)
    if b.ndim < 2:
        raise ShapeError(f"linalg.solve: B must be (..., n, k) or (..., n), got shape {shapes[1]}")
    if not left:  # X A = B is A^T X^T = B^T
        a, b = mT(a), mT(b)
    _fits("linalg.solve", a, b, shapes, left)
    x = _solve(*_same_batch("linalg.solve", a, b), check=True)
    if not left:
        x = mT(x)
    return squeeze(x, -1 if left else -2) if vector else x


def inv(A: Tensor) -> Tensor:  # noqa: N803 - PyTorch's name
    """The inverse of ``A`` (..., n, n), as ``torch.linalg.inv``: ``solve(A, I)``, one kernel call. Raises
    ``LinAlgError`` for a singular ``A``. Differentiable to any order. (To apply an inverse, ``solve(A, B)`` is
    faster and more accurate than ``inv(A) @ B``.)"""
    (a,) = _floats("linalg.inv", A=A)
    _square("linalg.inv", "A", a)
    eye = tensor(np.eye(a.shape[-1], dtype=a.dtype.np), device=a._device)
    return _solve(a, expand(eye, *a.shape), check=True, op="linalg.inv")


def _solve(a: Tensor, b: Tensor, check: bool, op: str = "linalg.solve") -> Tensor:
    """``a^-1 @ b`` for operands of one batch shape, one kernel call; ``check`` raises for a singular ``a``."""
    dev = a._device
    if _empty(a._data.shape) or _empty(b._data.shape):
        out = _zeros(b._data.shape, b)
    else:
        x, info = dev.kernels.solve(a._data, b._data)
        if check:
            _check_info(info, dev, op, _singular)
        out = _wrap(x, dev)
    if grad_state.enabled and (a.requires_grad or b.requires_grad):
        record(out, "LinalgSolve", (a, b), lambda g, o: _solve_vjp(g, o, a, b), needs_output=True, saved=(a,))
    return out


def _solve_vjp(g: Tensor, x: Tensor, a: Tensor, b: Tensor) -> tuple:
    gb = _solve(mT(a), g, check=False)  # a^-T g (a^T is as regular as a)
    ga = -matmul(gb, mT(x)) if a.requires_grad else None
    return ga, gb if b.requires_grad else None


# -- solve_triangular --------------------------------------------------------------------------------------------


def solve_triangular(A: Tensor, B: Tensor, *, upper: bool, left: bool = True,  # noqa: N803
                     unitriangular: bool = False) -> Tensor:
    """The solution X of ``T @ X = B`` (``X @ T = B`` with ``left=False``) for ``T`` the upper (``upper=True``)
    or lower triangle of ``A``, as ``torch.linalg.solve_triangular``; the other triangle is never read, nor the
    diagonal with ``unitriangular=True`` (taken as ones).

    ``A`` is (..., n, n), ``B`` (..., n, k) ((..., k, n) with ``left=False``); batch axes broadcast. A zero on
    the diagonal gives infinities or NaN, as in PyTorch. Differentiable to any order in both."""
    a, b = _floats("linalg.solve_triangular", A=A, B=B)
    shapes = (a.shape, b.shape)
    _square("linalg.solve_triangular", "A", a)
    for name, value in (("upper", upper), ("left", left), ("unitriangular", unitriangular)):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"linalg.solve_triangular: {name} must be a bool, got {type(value).__name__} {value!r}")
    if b.ndim < 2:
        raise ShapeError(f"linalg.solve_triangular: B must have at least 2 dimensions (..., n, k), got shape "
                         f"{shapes[1]}")
    upper, unitriangular = bool(upper), bool(unitriangular)
    if not left:  # X T = B is T^T X^T = B^T, and T^T is triangular the other way
        a, b, upper = mT(a), mT(b), not upper
    _fits("linalg.solve_triangular", a, b, shapes, left)
    x = _solve_triangular(*_same_batch("linalg.solve_triangular", a, b), upper, unitriangular)
    return x if left else mT(x)


def _solve_triangular(a: Tensor, b: Tensor, upper: bool, unitriangular: bool) -> Tensor:
    dev = a._device
    if _empty(a._data.shape) or _empty(b._data.shape):
        out = _zeros(b._data.shape, b)
    else:
        out = _wrap(dev.kernels.solve_triangular(a._data, b._data, upper, unitriangular), dev)
    if grad_state.enabled and (a.requires_grad or b.requires_grad):
        record(out, "LinalgSolveTriangular", (a, b),
               lambda g, o: _solve_triangular_vjp(g, o, a, b, upper, unitriangular), needs_output=True, saved=(a,))
    return out


def _solve_triangular_vjp(g: Tensor, x: Tensor, a: Tensor, b: Tensor, upper: bool, unitriangular: bool) -> tuple:
    gb = _solve_triangular(mT(a), g, not upper, unitriangular)  # t^-T g
    ga = None
    if a.requires_grad:  # -gb x^T on the entries the op reads, zero elsewhere
        ga = where(_triangle(a.shape[-1], upper, unitriangular, a), -matmul(gb, mT(x)), 0.0)
    return ga, gb if b.requires_grad else None


# -- cholesky ----------------------------------------------------------------------------------------------------


def cholesky(A: Tensor, *, upper: bool = False) -> Tensor:  # noqa: N803
    """The Cholesky factor of the symmetric positive-definite ``A`` (..., n, n), as ``torch.linalg.cholesky``:
    lower-triangular ``L`` with ``A = L @ L.mT``, read from ``A``'s lower triangle; with ``upper=True``, ``U =
    L.mT``, read from the upper triangle. Raises ``LinAlgError`` naming the first leading minor that is not
    positive-definite. The gradient is PyTorch's, symmetric (``A`` taken as a symmetric matrix), to any order."""
    (a,) = _floats("linalg.cholesky", A=A)
    _square("linalg.cholesky", "A", a)
    if not isinstance(upper, (bool, np.bool_)):
        raise TypeError(f"linalg.cholesky: upper must be a bool, got {type(upper).__name__} {upper!r}")
    if upper:  # the upper triangle of A is the lower one of A^T
        return mT(_cholesky(mT(a)))
    return _cholesky(a)


def _cholesky(a: Tensor) -> Tensor:
    dev = a._device
    if _empty(a._data.shape):
        out = _zeros(a._data.shape, a)
    else:
        low, info = dev.kernels.cholesky(a._data)
        _check_info(info, dev, "linalg.cholesky", _not_positive_definite)
        out = _wrap(low, dev)
    if grad_state.enabled and a.requires_grad:
        record(out, "LinalgCholesky", (a,), lambda g, o: (_cholesky_vjp(g, o),), needs_output=True, saved=())
    return out


def _cholesky_vjp(g: Tensor, low: Tensor) -> Tensor:
    # dL = L Phi(L^-1 dA L^-T), Phi taking the lower triangle with half the diagonal (Murray, 2016), so for a
    # symmetric dA: <g, dL> = <L^-T S L^-1, dA> with S the symmetric part of Phi(L^T g)
    n = low.shape[-1]
    p = where(_triangle(n, False, False, low), matmul(mT(low), g), 0.0)  # tril(L^T g)
    s = (p + mT(where(_triangle(n, False, True, low), p, 0.0))) * 0.5  # its strict part mirrored, diagonal halved
    half = _solve_triangular(mT(low), s, True, False)  # L^-T S
    return _solve_triangular(mT(low), mT(half), True, False)  # L^-T (L^-T S)^T = L^-T S L^-1, S being symmetric
