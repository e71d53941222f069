"""Elementwise ops: unary math, broadcasting binary arithmetic, comparisons, where, cast, clamp."""

from __future__ import annotations

import math

from .. import dtypes as _dt
from ..autograd.grad_mode import state as grad_state
from ..autograd.graph import record
from ..errors import DTypeError
from ..tensor import tensor
from ._operands import (
    Tensor,
    _wrap,
    as_scalar,
    broadcast_shapes,
    cast,
    device_mismatch,
    needs_grad,
    not_a_tensor,
    prepare,
    sum_to,
)

# -- binary -----------------------------------------------------------------------------------------


def _binary_op(kernel: str, name: str, da, db, floating: bool = False, saves: bool = True, needs_output: bool = False,
            scalar_saves: bool = True):
    """A broadcasting binary op. ``da(g, a, b, out)``/``db(...)`` give the gradient for each operand
    before un-broadcasting; either operand may be a Python number there. An op whose gradients do not
    read the operands (add, sub) passes ``saves=False``: they get None, and are not kept alive for backward.
    ``scalar_saves=False``: with a number for one operand, the gradient does not read the other (mul)."""
    scalar_saved = None if saves and scalar_saves else ()

    def op(a, b) -> Tensor:
        a, b, x, y, dev = prepare(a, b, kernel, floating)
        out = _wrap(getattr(dev.kernels, kernel)(x, y), dev)
        if needs_grad(a, b):
            sa, sb = getattr(a, "shape", None), getattr(b, "shape", None)
            ka, kb = (a, b) if saves else (None, None)
            if x is a:  # a is a number
                record(out, name, (b,), lambda g, o: (sum_to(db(g, a, kb, o), sb),), needs_output, scalar_saved)
            elif y is b:  # b is a number
                record(out, name, (a,), lambda g, o: (sum_to(da(g, ka, b, o), sa),), needs_output, scalar_saved)
            else:
                ra, rb = a.requires_grad, b.requires_grad
                record(out, name, (a, b), lambda g, o: (
                    sum_to(da(g, ka, kb, o), sa) if ra else None,
                    sum_to(db(g, ka, kb, o), sb) if rb else None), needs_output, None if saves else ())
        return out

    op.__name__ = op.__qualname__ = kernel
    op.__doc__ = f"Elementwise ``{kernel}`` with NumPy broadcasting and type promotion."
    return op


def _max_mask(a, b):
    """1 where a > b, 1/2 where a == b (ties split the gradient), else 0; as a's float dtype."""
    gt, eq = a > b, a == b
    ref = a if isinstance(a, Tensor) else b
    return gt.to(ref.dtype) + eq.to(ref.dtype) * 0.5


add = _binary_op("add", "Add", lambda g, a, b, o: g, lambda g, a, b, o: g, saves=False)
sub = _binary_op("sub", "Sub", lambda g, a, b, o: g, lambda g, a, b, o: -g, saves=False)
mul = _binary_op("mul", "Mul", lambda g, a, b, o: g * b, lambda g, a, b, o: g * a, scalar_saves=False)
div = _binary_op("div", "Div", lambda g, a, b, o: g / b, lambda g, a, b, o: -g * o / b, floating=True,
                 needs_output=True)
pow = _binary_op("pow", "Pow", lambda g, a, b, o: g * b * a ** (b - 1),  # noqa: A001
              lambda g, a, b, o: g * o * (log(a) if isinstance(a, Tensor) else math.log(a)), floating=True,
              needs_output=True)
maximum = _binary_op("maximum", "Maximum", lambda g, a, b, o: g * _max_mask(a, b),
                  lambda g, a, b, o: g * _max_mask(b, a))
minimum = _binary_op("minimum", "Minimum", lambda g, a, b, o: g * _max_mask(b, a),
                  lambda g, a, b, o: g * _max_mask(a, b))


def rsub(a, b) -> Tensor:
    return sub(b, a)


def rdiv(a, b) -> Tensor:
    return div(b, a)


def rpow(a, b) -> Tensor:
    return pow(b, a)


def _comparison(kernel: str):
    def op(a, b) -> Tensor:
        a, b, x, y, dev = prepare(a, b, kernel)
        return _wrap(getattr(dev.kernels, kernel)(x, y), dev)

    op.__name__ = op.__qualname__ = kernel
    op.__doc__ = f"Elementwise ``{kernel}`` comparison, giving a bool tensor."
    return op


eq, ne, lt, le, gt, ge = (_comparison(k) for k in ("eq", "ne", "lt", "le", "gt", "ge"))


def logical_not(x: Tensor) -> Tensor:
    return eq(x.bool(), False)


def logical_and(a: Tensor, b: Tensor) -> Tensor:
    return mul(a.bool(), b.bool() if isinstance(b, Tensor) else bool(b))


def logical_or(a: Tensor, b: Tensor) -> Tensor:
    return maximum(a.bool(), b.bool() if isinstance(b, Tensor) else bool(b))


# -- unary ------------------------------------------------------------------------------------------


def _unary_op(kernel: str, name: str, vjp, floating: bool = True, uses: str = "x"):
    """An elementwise op; ``vjp(g, x, out)`` gives the input gradient. ``uses`` says what it reads: "x" (the
    input is kept for backward), "out" (the output is) or "" (neither: it gets None). Integer inputs of a
    ``floating`` op are first cast to the default float."""

    def op(x: Tensor) -> Tensor:
        try:
            kind = x._data.dtype.kind
        except AttributeError:
            raise not_a_tensor(kernel, x) from None
        if kind != "f":
            if floating:
                x = cast(x, _dt.default_float)
            elif kind == "b":
                raise DTypeError(f"{kernel}: not defined for bool tensors (it takes float32, float64 or int64: "
                                 "cast with .float() or .long())")
        out = _wrap(getattr(x._device.kernels, kernel)(x._data), x._device)
        if vjp is not None and x.requires_grad and grad_state.enabled:
            kx = x if uses == "x" else None
            record(out, name, (x,), lambda g, o: (vjp(g, kx, o),), uses == "out", None if kx is not None else ())
        return out

    op.__name__ = op.__qualname__ = kernel
    op.__doc__ = f"Elementwise ``{kernel}``."
    return op


neg = _unary_op("neg", "Neg", lambda g, x, o: -g, floating=False, uses="")
abs = _unary_op("abs", "Abs", lambda g, x, o: g * sign(x), floating=False)  # noqa: A001
sign = _unary_op("sign", "Sign", None, floating=False)
exp = _unary_op("exp", "Exp", lambda g, x, o: g * o, uses="out")
log = _unary_op("log", "Log", lambda g, x, o: g / x)
sqrt = _unary_op("sqrt", "Sqrt", lambda g, x, o: g / (o * 2), uses="out")
sin = _unary_op("sin", "Sin", lambda g, x, o: g * cos(x))
cos = _unary_op("cos", "Cos", lambda g, x, o: -g * sin(x))
tanh = _unary_op("tanh", "Tanh", lambda g, x, o: g * (1 - o * o), uses="out")
sigmoid = _unary_op("sigmoid", "Sigmoid", lambda g, x, o: g * o * (1 - o), uses="out")
relu = _unary_op("relu", "Relu", lambda g, x, o: relu_backward(g, x), floating=False)


def relu_backward(g: Tensor, x: Tensor) -> Tensor:
    """``g`` where ``x > 0``, else 0: ReLU's vjp, itself differentiable in ``g``."""
    out = _wrap(g._device.kernels.relu_backward(g._data, x._data), g._device)
    if g.requires_grad and grad_state.enabled:
        mask = _wrap(x._data, x._device)  # x's value now (only its sign is read): a change to x cannot reach it
        record(out, "ReluBackward", (g,), lambda gg, o: (relu_backward(gg, mask),), saved=())
    return out


def square(x: Tensor) -> Tensor:
    return mul(x, x)


def rsqrt(x: Tensor) -> Tensor:
    return div(1.0, sqrt(x))


def clamp(x: Tensor, min=None, max=None) -> Tensor:
    """Limit values to ``[min, max]`` (either bound may be None, a number or a tensor)."""
    if min is None and max is None:
        raise ValueError("clamp: give at least one of min and max")
    if min is not None:
        x = maximum(x, min)
    if max is not None:
        x = minimum(x, max)
    return x


# -- selection and casts ----------------------------------------------------------------------------


def where(cond: Tensor, a, b) -> Tensor:
    """Elementwise ``a if cond else b``; ``cond`` is a bool tensor, ``a``/``b`` tensors or numbers."""
    if not isinstance(cond, Tensor):
        raise TypeError(f"where: cond must be a bool Tensor, got {type(cond).__name__}")
    if cond._data.dtype.kind != "b":
        cond = cond.bool()
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        if as_scalar(a) is None or as_scalar(b) is None:
            raise TypeError("where: a and b must be tensors or numbers")
        a = tensor(a, device=cond._device)  # a 0-d tensor: the result dtype follows the tensor rules
    a, b, x, y, dev = prepare(a, b, "where")
    if cond._device is not dev:
        raise device_mismatch("where", cond, a if isinstance(a, Tensor) else b)
    for t in (a, b):
        if isinstance(t, Tensor) and t.shape != cond.shape:
            broadcast_shapes(cond.shape, t.shape, "where")
    out = _wrap(dev.kernels.where(cond._data, x, y), dev)
    if needs_grad(a, b):
        ta, tb = isinstance(a, Tensor), isinstance(b, Tensor)
        parents = tuple(t for t in (a, b) if isinstance(t, Tensor))
        mask = _wrap(cond._data, dev)  # cond's value now: a later change to cond cannot reach the gradient

        def vjp(g, o):
            grads = []
            if ta:
                grads.append(sum_to(where(mask, g, 0), a.shape) if a.requires_grad else None)
            if tb:
                grads.append(sum_to(where(mask, 0, g), b.shape) if b.requires_grad else None)
            return grads
        record(out, "Where", parents, vjp, saved=())
    return out


__all__ = [
    "abs", "add", "cast", "clamp", "cos", "div", "eq", "exp", "ge", "gt", "le", "log", "logical_and",
    "logical_not", "logical_or", "lt", "maximum", "minimum", "mul", "ne", "neg", "pow", "rdiv", "relu",
    "relu_backward", "rpow", "rsqrt", "rsub", "sigmoid", "sign", "sin", "sqrt", "square", "sub",
    "tanh", "where",
]
