"""Step counting for optimizers whose update is composed of Tensor ops: the counts advance in a host step, so
that a compiled step (``neurenix.compile``) advances them at every replay, and the values that depend on the
count (bias corrections, a decayed rate) come out of that host step as 0-d tensors which the recorded ops read."""

from __future__ import annotations

from collections.abc import Callable

from ..capture import recording
from ..tensor import Tensor, _wrap


def count_steps(params: list[Tensor], states: list[dict], factors: Callable | None = None) -> list[list[Tensor]]:
    """Add one to each ``state["step"]``; with ``factors(step) -> tuple of floats``, return for each parameter
    those numbers as 0-d tensors of its dtype on its device (else an empty list)."""
    device = params[0]._device
    rows = recording.host(_advance, device, states, [p._data.dtype for p in params], factors)
    return [[_wrap(b, device) for b in row] for row in rows]


def _advance(device, states: list, dtypes: list, factors: Callable | None) -> list:
    rows = []
    for s, dtype in zip(states, dtypes):
        s["step"] += 1
        if factors is not None:
            rows.append([device.kernels.full((), float(v), dtype, device.index) for v in factors(s["step"])])
    return rows


def signed_decayed(p: Tensor, grad: Tensor, weight_decay: float, maximize: bool) -> Tensor:
    """The gradient as PyTorch's optimizers first adjust it: negated to maximize, plus ``weight_decay * p``."""
    g = -grad if maximize else grad
    return g + p * weight_decay if weight_decay else g


def grad_of(p: Tensor) -> Tensor:
    """``p``'s gradient, in ``p``'s dtype."""
    g = p.grad
    return g if g._data.dtype is p._data.dtype else g.to(p.dtype)
