"""Rounding, floor division, remainder, the error function and float classification, composed in core
from the primitive kernels (casts, comparisons, arithmetic): no kernel of their own."""

from __future__ import annotations

import math

import numpy as np

from .. import dtypes as _dt
from ..arguments import boolean, number
from ..autograd.grad_mode import no_grad
from ._operands import Tensor, as_scalar, not_a_tensor, prepare
from .elementwise import abs, cast, exp, where
from .reduce import all

# Numerical Recipes' erfc (Chebyshev fit): relative error below 1.2e-7 everywhere
_ERFC = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398, 1.48851587,
         -0.82215223, 0.17087277)
_ERFC_AT_0 = math.exp(math.fsum(_ERFC))  # the fit's erfc(0), 1 + 3e-8: dividing by it makes erf continuous at 0


def _tensor(x, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise not_a_tensor(op, x)
    return x


def floor(x: Tensor) -> Tensor:
    """The largest integer not above each element (floats stay floats, exact for every float; inf and NaN
    are kept)."""
    if _tensor(x, "floor")._data.dtype.kind != "f":
        return x * 1
    with no_grad():  # its gradient is 0 almost everywhere: not recorded, as PyTorch's is all zeros
        # a float of 2**mantissa or more is an integer already; only the others go through int64, whose cast
        # is undefined beyond 2**63 (and for inf, NaN)
        small = abs(x) < 2.0 ** np.finfo(x._data.dtype).nmant
        s = where(small, x, 0.0)
        t = cast(cast(s, _dt.int64), x.dtype)  # truncated toward zero
        t = t - (t > s).to(x.dtype)
        return where(small & (t != x), t, x)  # x where it is an integer: keeps -0.0 as NumPy


def floor_divide(a, b) -> Tensor:
    """``a // b`` rounding toward negative infinity, as Python and PyTorch (``//``); not differentiable."""
    a, b, _, _, _ = prepare(a, b, "floor_divide")
    ref = a if isinstance(a, Tensor) else b
    if ref._data.dtype.kind == "f":
        return floor(a / b)
    with no_grad():
        return _int_floor_divide(a, b)


_REFINEMENTS = 3  # float32 quotients err by |q| * 2**-23 at most: three rounds bring an int64 quotient to +-1


def _float_quotient(num, b) -> Tensor:
    """``floor(num / b)`` computed in float32 (every backend has it) and cast back to int64: near, not exact."""
    return cast(floor(cast(num, _dt.float32) / (cast(b, _dt.float32) if isinstance(b, Tensor) else float(b))),
                _dt.int64)


def _int_floor_divide(a, b) -> Tensor:
    """Exact int64 floor division from float32 steps: a first quotient, refined on its exact int64 remainder
    (each round shrinks the error 2**23-fold), then a last +-1 correction so that ``a - q * b`` lies between 0
    and ``b``."""
    _no_zero_divisor(b)
    if not isinstance(a, Tensor):
        a = b * 0 + a  # a number over a tensor: the number broadcast, int64
    q = _float_quotient(a, b)
    for _ in range(_REFINEMENTS):
        q = q + _float_quotient(a - q * b, b)
    negative_b = _sign_of(b) < 0
    r = a - q * b
    q = q - ((r != 0) & ((r < 0) != negative_b)).to(_dt.int64)  # r of the wrong sign: q one too large
    r, size = a - q * b, abs(b) if isinstance(b, Tensor) else -b if b < 0 else b
    return q + ((r != 0) & ((r < 0) == negative_b) & (abs(r) >= size)).to(_dt.int64)  # q one too small


def _no_zero_divisor(b) -> None:
    """Integer division by zero raises, as in Python and PyTorch (its float steps would give garbage). A
    divisor tensor is read on the host (a synchronisation, and an eager call in a compiled function)."""
    zero = (b == 0).any().item() if isinstance(b, Tensor) else b == 0
    if zero:
        raise RuntimeError("floor_divide: integer division by zero (ZeroDivisionError in Python; divide floats, or "
                           "keep zeros out of the divisor)")


def _sign_of(b):
    return b if isinstance(b, Tensor) else b + 0


def remainder(a, b) -> Tensor:
    """``a % b`` with the sign of ``b`` (Python's and PyTorch's ``%``); differentiable in ``a`` and ``b``."""
    return a - floor_divide(a, b) * b


def rfloordiv(a, b) -> Tensor:
    return floor_divide(b, a)


def rremainder(a, b) -> Tensor:
    return remainder(b, a)


def erf(x: Tensor) -> Tensor:
    """The error function, composed from ``exp`` and a Chebyshev fit (Numerical Recipes' ``erfcc``): absolute
    error below 2e-7 (float32's precision; not float64's). Differentiable to any order."""
    if _tensor(x, "erf")._data.dtype.kind != "f":
        x = cast(x, _dt.default_float)
    z = where(x >= 0, x, -x)  # |x|, with the slope 1 at 0 (abs's would be 0 there)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = _ERFC[-1]
    for c in reversed(_ERFC[:-1]):
        poly = c + t * poly
    erfc = t * exp(poly - z * z) * (1 / _ERFC_AT_0)
    return where(x >= 0, 1.0 - erfc, erfc - 1.0)


def isnan(x: Tensor) -> Tensor:
    """Where ``x`` is NaN (a bool tensor)."""
    return _tensor(x, "isnan") != x


def isinf(x: Tensor) -> Tensor:
    """Where ``x`` is +inf or -inf."""
    if _tensor(x, "isinf")._data.dtype.kind != "f":
        return x != x
    return abs(x) == math.inf


def isfinite(x: Tensor) -> Tensor:
    """Where ``x`` is neither NaN nor infinite."""
    if _tensor(x, "isfinite")._data.dtype.kind != "f":
        return x == x
    return abs(x) < math.inf


def isclose(a: Tensor, b, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> Tensor:
    """Elementwise ``|a - b| <= atol + rtol * |b|`` (infinities equal when they match; NaN equal to NaN only
    with ``equal_nan``)."""
    rtol = number(rtol, "rtol", "isclose", minimum=0.0)
    atol = number(atol, "atol", "isclose", minimum=0.0)
    equal_nan = boolean(equal_nan, "equal_nan", "isclose")
    _tensor(a, "isclose")
    if as_scalar(b) is None:
        b = _tensor(b, "isclose")
    with no_grad():
        b = b if isinstance(b, Tensor) else a * 0 + b
        finite = isfinite(a) & isfinite(b)
        fa, fb = where(finite, a, 0), where(finite, b, 0)  # no inf - inf below
        close = (a == b) | (finite & ((fa - fb).abs() <= atol + rtol * abs(fb)))
        return close | (isnan(a) & isnan(b)) if equal_nan else close


def allclose(a: Tensor, b, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> bool:
    """Whether every element of ``a`` is close to ``b`` (see ``isclose``), as a Python bool."""
    return bool(all(isclose(a, b, rtol, atol, equal_nan)).item())
