"""Checking arguments at public entry points, so that bad input fails at once with a message naming the
op, the argument and the value (never later, inside a kernel or NumPy, with someone else's words).

The checks return the argument normalised (an ``int``, a ``float``, a tuple), so a caller writes
``n = integer(n, "n", "randperm", minimum=0)`` and goes on with a value it can trust. (Checks that an
argument is a tensor are with the ops: ``neurenix.ops.expect_tensor``, ``tensor_first``.)
"""

from __future__ import annotations

import math
import operator

import numpy as np


def integer(value, name: str, op: str, minimum: int | None = None) -> int:
    """``value`` as an int (ints, NumPy integers and one-element integer tensors are accepted), at least
    ``minimum``; else a TypeError or ValueError naming ``op`` and ``name``."""
    if isinstance(value, float) or value is None:
        raise TypeError(f"{op}: {name} must be an int, got {type(value).__name__} {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{op}: {name} must be an int, got {type(value).__name__} {value!r:.60}") from None
    if minimum is not None and v < minimum:
        raise ValueError(f"{op}: {name} must be at least {minimum}, got {v}")
    return v


def number(value, name: str, op: str, minimum: float | None = None, maximum: float | None = None,
           finite: bool = True, above: float | None = None) -> float:
    """``value`` as a float, finite unless ``finite=False``, within ``[minimum, maximum]`` and above
    ``above`` (exclusive) where given; else a TypeError or ValueError naming ``op`` and ``name``."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{op}: {name} must be a number, got {type(value).__name__} {value!r:.60}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: {name} must be a number, got {type(value).__name__} {value!r:.60}") from None
    if math.isnan(v) or (finite and math.isinf(v)):
        raise ValueError(f"{op}: {name} must be a finite number, got {v}")
    if minimum is not None and v < minimum:
        raise ValueError(f"{op}: {name} must be at least {minimum}, got {v}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{op}: {name} must be at most {maximum}, got {v}")
    if above is not None and v <= above:
        raise ValueError(f"{op}: {name} must be greater than {above}, got {v}")
    return v


def boolean(value, name: str, op: str) -> bool:
    """``value`` as a bool: a bool, a NumPy bool, or the int 0 or 1."""
    if isinstance(value, (bool, np.bool_)) or (type(value) is int and value in (0, 1)):
        return bool(value)
    raise TypeError(f"{op}: {name} must be True or False, got {type(value).__name__} {value!r:.40}")


def int64(value, name: str, op: str) -> int:
    """``value`` as an int within int64's range."""
    v = integer(value, name, op)
    if not -2 ** 63 <= v < 2 ** 63:
        raise ValueError(f"{op}: {name} must fit int64, got {v}")
    return v


def fill_value(value, op: str):
    """A fill value: a Python or NumPy number (or bool), or a one-element tensor's value."""
    if hasattr(value, "_data"):  # a tensor (duck-typed: this module is below tensor.py)
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    if type(value) not in (bool, int, float):
        raise TypeError(f"{op}: the fill value must be a number, got {type(value).__name__} {value!r:.40}")
    if type(value) is int:
        int64(value, "the fill value", op)
    return value


def shape(sizes, op: str) -> tuple:
    """``f(2, 3)`` or ``f((2, 3))`` or ``f([2, 3])`` as a tuple of non-negative ints."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = sizes[0]
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        sizes = (sizes,)
    out = tuple(integer(s, "size", op) for s in sizes)
    if any(s < 0 for s in out):
        raise ValueError(f"{op}: sizes must be non-negative, got {out}")
    n = math.prod(out)
    if n >= 2 ** 60 or any(s >= 2 ** 60 for s in out):  # more bytes than 64-bit addresses reach (NumPy's limit)
        raise ValueError(f"{op}: a tensor of shape {out} would have {n} elements, more than any device holds")
    return out


def pair(value, name: str, op: str, minimum: int | None = None) -> tuple:
    """An int or a pair of ints as a pair, each at least ``minimum``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {tuple(value)}")
        return integer(value[0], name, op, minimum), integer(value[1], name, op, minimum)
    v = integer(value, name, op, minimum)
    return v, v


def choice(value, name: str, op: str, options: tuple):
    """``value`` if it is one of ``options`` (compared by type and equality: a tensor is never one)."""
    if not any(type(value) is type(o) and value == o for o in options):
        raise ValueError(f"{op}: {name} must be one of {', '.join(map(repr, options))}, got {value!r:.60}")
    return value


__all__ = ["boolean", "choice", "fill_value", "int64", "integer", "number", "pair", "shape"]
