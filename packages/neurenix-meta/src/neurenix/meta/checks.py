"""Argument checks shared by ``neurenix.meta``'s public entry points.

Each returns the value (normalised: ``int``, ``float``, ``bool``) or raises an error that names the argument
and the value: a TypeError for a value of the wrong kind, a ValueError for one out of range.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

import neurenix as nx
from neurenix.dtypes import as_dtype
from neurenix.nn import Module
from neurenix.optim import Optimizer
from neurenix.optim.lr_scheduler import LRScheduler


def count(name: str, value: Any, least: int = 0) -> int:
    """An integer >= ``least`` (a bool is not a count)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {least}, got {value!r} ({type(value).__name__})")
    if value < least:
        raise ValueError(f"{name} must be an int >= {least}, got {value!r}")
    return int(value)


def rate(name: str, value: Any) -> float:
    """A finite real number >= 0 (a learning rate, a loss weight)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a finite number >= 0, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def finite(name: str, value: Any) -> float:
    """A finite real number, of either sign (an initial scale or bias, a log-weight)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a finite number, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def positive(name: str, value: Any) -> float:
    """A finite real number > 0 (a regularisation strength)."""
    value = finite(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def max_norm(name: str, value: Any) -> float | None:
    """None (no clipping) or a finite number > 0 (a gradient-norm bound: 0 would zero every gradient)."""
    if value is None:
        return None
    value = rate(name, value)
    if value == 0:
        raise ValueError(f"{name} must be None or a finite number > 0, got {value!r}")
    return value


def flag(name: str, value: Any) -> bool:
    """True or False (NumPy's bools too): a string such as "no" would otherwise read as True."""
    if not isinstance(value, (bool, np.bool_, numbers.Integral)) or value not in (0, 1):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def module(name: str, value: Any) -> Module:
    if not isinstance(value, Module):
        raise TypeError(f"{name} must be a neurenix.nn.Module, got {type(value).__name__}")
    return value


def function(name: str, value: Any) -> Callable | None:
    """None or something callable."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be a function or None, got {value!r}")
    return value


def seed(name: str, value: Any) -> int | None:
    """None (draw from neurenix's generator) or a seed: an int >= 0."""
    return None if value is None else count(name, value, 0)


def float_dtype(name: str, value: Any) -> nx.DType:
    """A floating-point dtype (None: float32): tasks in integers or bools would round their values away."""
    dtype = nx.float32 if value is None else as_dtype(value)
    if not dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating-point dtype (float32 or float64), got {dtype}")
    return dtype


def choice(name: str, value: Any, options: tuple) -> Any:
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


class Validated:
    """An attribute checked on every assignment, at construction and later: ``inner_lr = Validated(rate)``
    runs ``rate("inner_lr", value)`` and stores what it returns."""

    def __init__(self, check: Callable[..., Any], *args: Any):
        self.check, self.args = check, args

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        try:
            return obj.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.name] = self.check(self.name, value, *self.args)


def scheduler(name: str, value: Any, optimizer: Optimizer) -> LRScheduler | None:
    """None, or a learning-rate scheduler of ``optimizer`` whose state a checkpoint can hold (JSON)."""
    if value is None:
        return None
    if not isinstance(value, LRScheduler):  # (ReduceLROnPlateau is one too)
        raise TypeError(f"{name} must be a neurenix.optim.lr_scheduler scheduler or None, got {type(value).__name__}")
    if value.optimizer is not optimizer:
        raise ValueError(f"{name}: it schedules another optimizer than the meta-optimizer (build it on the "
                         "meta_optimizer you pass, or on learner.default_optimizer() when you pass none)")
    try:
        json.dumps(value.state_dict())
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name}: its state_dict() cannot be saved in a checkpoint ({e})") from None
    return value
