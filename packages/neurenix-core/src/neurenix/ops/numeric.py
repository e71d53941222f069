"""Rounding, floor division, remainder, the error function, ``log1p``/``expm1`` and float classification,
composed in core from the primitive kernels (casts, comparisons, arithmetic): no kernel of their own."""

from __future__ import annotations

import functools
import math

import numpy as np

from .. import dtypes as _dt
from ..arguments import boolean, number
from ..autograd.grad_mode import no_grad
from ..autograd.grad_mode import state as grad_state
from ..autograd.graph import record
from ..errors import DTypeError
from ._operands import Tensor, as_scalar, not_a_tensor, prepare
from .elementwise import abs, cast, clamp, exp, log, where
from .reduce import all

_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)
_ERF_TAIL_END = 6.0  # erfc(6) = 2e-17: erf is +-1 in float64 beyond
# per float dtype: Taylor terms of erf(x)/x in x*x (|x| <= 1), the Chebyshev degree of the tail fit (|x| > 1);
# each measured against math.erf: within 2.5 ulp (float32) and 1e-15 absolute, 4 ulp relative (float64)
_ERF_DEGREES = {"float32": (10, 8), "float64": (17, 20)}


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


def ceil(x: Tensor) -> Tensor:
    """The smallest integer not below each element (floats stay floats; inf and NaN are kept)."""
    if _integral(x, "ceil"):
        return x * 1
    return -floor(-x)


def trunc(x: Tensor) -> Tensor:
    """Each element rounded toward zero (floats stay floats; -0.0, inf and NaN are kept)."""
    if _integral(x, "trunc"):
        return x * 1
    with no_grad():
        return where(x >= 0, floor(x), ceil(x))


def round(x: Tensor, decimals: int = 0) -> Tensor:  # noqa: A001  (PyTorch's name)
    """Each element rounded to the nearest integer, ties to even (as PyTorch and NumPy: 0.5 -> 0, 1.5 -> 2), or
    to ``decimals`` decimal places (``round(x * 10**decimals) / 10**decimals``, as PyTorch: near, not exact)."""
    if isinstance(decimals, bool) or not isinstance(decimals, int):
        raise TypeError(f"round: decimals must be an int, got {decimals!r}")
    if _integral(x, "round"):
        if decimals:
            raise DTypeError(f"round: decimals={decimals} needs a float tensor, got {x.dtype} (as PyTorch; cast "
                             "with .double() first)")
        return x * 1
    if decimals:
        with no_grad():
            return _round_decimals(x, decimals)
    with no_grad():
        finite = isfinite(x)
        xs = where(finite, x, 0.0)  # no inf - inf below
        f = floor(xs)
        part = xs - f  # exact: the fraction of a float is a float
        odd = (f - 2.0 * floor(f * 0.5)) == 1.0
        r = where((part > 0.5) | ((part == 0.5) & odd), f + 1.0, f)
        r = where(r == 0, xs * 0.0, r)  # a zero takes x's sign: round(-0.4) is -0.0
        return where(finite, r, x)


def _round_decimals(x: Tensor, decimals: int) -> Tensor:
    """``round(x * 10**d) / 10**d``, or ``round(x / 10**-d) * 10**-d`` for negative ``d`` (as PyTorch and NumPy),
    without their overflow: where ``x * 10**d`` would pass the dtype's largest value, ``x`` is far coarser than
    ``10**-d`` and is its own rounding; a ``10**-d`` beyond it rounds every finite value to a (signed) zero."""
    biggest = float(np.finfo(x._data.dtype).max)
    if decimals < 0:
        finite = isfinite(x)
        xs = where(finite, x, 0.0)  # (no inf * 0 below)
        if decimals < -308 or 10.0 ** -decimals > biggest:
            return where(finite, xs * 0.0, x)
        scale = 10.0 ** -decimals
        return where(finite, round(xs / scale) * scale, x)
    if decimals > 308 or 10.0 ** decimals > biggest:
        return x * 1
    scale = 10.0 ** decimals
    fits = abs(x) < biggest / scale  # (inf and NaN do not: they are kept)
    return where(fits, round(where(fits, x, 0.0) * scale) / scale, x)


def _integral(x, op: str) -> bool:
    """Whether ``x`` holds integers (rounding is a copy); bool tensors raise, as in PyTorch."""
    kind = _tensor(x, op)._data.dtype.kind
    if kind == "b":
        raise DTypeError(f"{op}: not defined for bool tensors (cast with .float() or .long())")
    return kind != "f"


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
    """The error function, to the precision of ``x``'s dtype (within a few ulp; relative precision for tiny
    ``x`` too), composed from ``exp`` and polynomials. Its gradient is ``2/sqrt(pi) * exp(-x*x)``, to any order."""
    if _tensor(x, "erf")._data.dtype.kind != "f":
        x = cast(x, _dt.default_float)
    taylor, tail = _erf_coefficients(x.dtype.name)
    with no_grad():
        s = x * x
        near = taylor[-1]
        for c in reversed(taylor[:-1]):  # Horner: the terms shrink fast for |x| <= 1, so it is well conditioned
            near = near * s + c
        near = x * near  # odd: keeps -0.0 and the relative precision of tiny x
        z = clamp(abs(x), 1.0, _ERF_TAIL_END)
        t = 1.0 / z
        u = (t - 1 / _ERF_TAIL_END) * (2 / (1 - 1 / _ERF_TAIL_END)) - 1.0  # [1/6, 1] -> [-1, 1]
        b1, b2 = 0.0, 0.0
        for c in reversed(tail[1:]):  # Clenshaw's recurrence for the Chebyshev series
            b1, b2 = 2.0 * u * b1 - b2 + c, b1
        far = 1.0 - exp(-(z * z)) * t * (u * b1 - b2 + tail[0])  # 1 - erfc(|x|)
        out = where(abs(x) <= 1.0, near, where(x >= 0, far, -far))
    if grad_state.enabled and x.requires_grad:
        record(out, "Erf", (x,), lambda g, o: (g * (_TWO_OVER_SQRT_PI * exp(-(x * x))),))
    return out


@functools.cache
def _erf_coefficients(dtype: str) -> tuple:
    """erf's Taylor terms and tail fit for ``dtype``: the tail is a Chebyshev interpolant of ``z e^(z^2) erfc(z)``
    in ``1/z`` on [1/6, 1], made from ``math.erfc`` at first use (no table of constants to trust)."""
    terms, degree = _ERF_DEGREES.get(dtype, _ERF_DEGREES["float64"])
    taylor = [_TWO_OVER_SQRT_PI * (-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(terms)]

    n = degree + 1
    angles = [math.pi * (k + 0.5) / n for k in range(n)]  # Chebyshev points cos(angle) on [-1, 1]
    lo = 1 / _ERF_TAIL_END
    ts = [lo + (math.cos(a) + 1) / 2 * (1 - lo) for a in angles]
    values = [math.erfc(1 / t) * _exp_square(1 / t) / t for t in ts]
    tail = [2 / n * math.fsum(v * math.cos(j * a) for v, a in zip(values, angles)) for j in range(n)]
    tail[0] /= 2
    return tuple(taylor), tuple(tail)


def _exp_square(z: float) -> float:
    """``exp(z*z)`` without the rounding of ``z*z`` (which would cost 36 ulp at z = 6): z*z = hi + lo exactly,
    by Dekker's product of Veltkamp's halves."""
    hi = z * z
    c = 134217729.0 * z  # 2**27 + 1
    zh = c - (c - z)
    zl = z - zh
    lo = ((zh * zh - hi) + 2 * zh * zl) + zl * zl
    return math.exp(hi) * (1 + lo)


def log1p(x: Tensor) -> Tensor:
    """``log(1 + x)``, precise also where ``x`` is tiny (Kahan's ``log(u) * x / (u - 1)`` for ``u = 1 + x``, which
    cancels the rounding of ``1 + x``). Gradient ``1 / (1 + x)``, to any order."""
    if _tensor(x, "log1p")._data.dtype.kind != "f":
        x = cast(x, _dt.default_float)
    with no_grad():
        xs = where(x == math.inf, 0.0, x)  # no inf / inf below
        u = 1.0 + xs
        d = u - 1.0
        out = where(d == 0, xs, log(u) * (xs / where(d == 0, 1.0, d)))  # 1 + x rounded to 1: log1p is x there
        out = where(x == math.inf, x, out)
    if grad_state.enabled and x.requires_grad:
        record(out, "Log1p", (x,), lambda g, o: (g / (1.0 + x),))
    return out


def expm1(x: Tensor) -> Tensor:
    """``exp(x) - 1``, precise also where ``x`` is tiny (Kahan's ``(u - 1) * x / log(u)`` for ``u = exp(x)``).
    Gradient ``exp(x)``, to any order."""
    if _tensor(x, "expm1")._data.dtype.kind != "f":
        x = cast(x, _dt.default_float)
    with no_grad():
        u = exp(x)
        d = u - 1.0
        kahan = (u > 0) & (u < math.inf) & (u != 1.0) & (d != -1.0)
        ratio = x / log(where(kahan, u, 2.0))  # (no log(0) below)
        # elsewhere: x where exp(x) rounded to 1, and u - 1 itself for -1 (x far below 0), inf and NaN
        out = where(kahan, d * ratio, where(u == 1.0, x, d))
    if grad_state.enabled and x.requires_grad:
        record(out, "Expm1", (x,), lambda g, o: (g * exp(x),))
    return out


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
