"""Differentiable inner-loop optimizers: MAML's inner steps by SGD, momentum, Adam or RMSprop.

Each is a pure function of tensors, ``step(k, ws, grads, lrs, state) -> (ws, state)``, written with
differentiable ops, so that second-order MAML differentiates the meta-objective through the optimizer's
update and state as through plain gradient descent, and every task of a batch (task axis in front) keeps its
own state. The updates follow ``torch.optim``'s (same names, defaults and bias correction).

Adam's and RMSprop's ``sqrt`` of the second moment goes through ``safe_sqrt``, whose derivative is 0 where
its argument is 0 instead of infinity: a parameter whose gradient is exactly 0 (a dead ReLU unit, a weight
the loss does not reach) would otherwise make the meta-gradient NaN (inf * 0), as a naive differentiable
Adam does (TorchOpt's issue #26). The update's derivative is unchanged, since there the second moment's own
derivative is 0 too.
"""

from __future__ import annotations

from collections.abc import Sequence

import neurenix as nx
from neurenix import Tensor
from neurenix.autograd import Function

from . import checks


class _SafeSqrt(Function):
    @staticmethod
    def forward(ctx, x):
        y = x.sqrt()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        positive = y > 0
        # the inner where keeps 1/0 out of the graph: its gradient would be inf * 0 at a higher order
        return nx.where(positive, g * 0.5 / nx.where(positive, y, 1.0), 0.0)


def safe_sqrt(x: Tensor) -> Tensor:
    """``x.sqrt()`` whose derivative is 0 (not infinite) where ``x`` is 0; to any order."""
    return _SafeSqrt.apply(x)


class InnerOptimizer:
    """Base class of the inner-loop update rules (see the module's docstring). ``state`` is a flat list of
    tensors shaped like the weights (task axis in front), ``init`` gives it; ``step`` is inner step ``k``
    (0-based), with one learning rate per weight (a number, or a tensor that broadcasts: learned rates)."""

    name = "sgd"

    def init(self, ws: list[Tensor]) -> list[Tensor]:
        return []

    def step(self, k: int, ws: list[Tensor], grads: list, lrs: list, state: list[Tensor]
             ) -> tuple[list[Tensor], list[Tensor]]:
        raise NotImplementedError

    def config(self) -> dict:
        """The settings (JSON-able): what a checkpoint records, and ``make`` rebuilds from."""
        return {"name": self.name} | {k: v for k, v in vars(self).items()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class SGD(InnerOptimizer):
    """``w - lr * g``: MAML's inner step."""

    def step(self, k, ws, grads, lrs, state):
        return [w if g is None else w - lr * g for w, g, lr in zip(ws, grads, lrs)], state


class Momentum(InnerOptimizer):
    """SGD with momentum, as ``torch.optim.SGD(momentum=...)``: ``b = momentum * b + g``, ``w - lr * b``."""

    name = "momentum"

    def __init__(self, momentum: float = 0.9):
        self.momentum = _fraction("momentum", momentum)

    def init(self, ws):
        return [nx.zeros_like(w) for w in ws]

    def step(self, k, ws, grads, lrs, state):
        bufs = [b if g is None else self.momentum * b + g for b, g in zip(state, grads)]
        return [w if g is None else w - lr * b for w, g, b, lr in zip(ws, grads, bufs, lrs)], bufs


class Adam(InnerOptimizer):
    """Adam with bias correction, as ``torch.optim.Adam``: ``w - lr * m_hat / (sqrt(v_hat) + eps)``."""

    name = "adam"

    def __init__(self, betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8):
        if not isinstance(betas, Sequence) or len(betas) != 2:
            raise TypeError(f"Adam: betas must be a pair of numbers in [0, 1), got {betas!r}")
        self.betas = [_fraction("betas[0]", betas[0]), _fraction("betas[1]", betas[1])]
        self.eps = checks.rate("eps", eps)

    def init(self, ws):
        return [nx.zeros_like(w) for w in ws] * 2

    def step(self, k, ws, grads, lrs, state):
        (b1, b2), n = self.betas, len(ws)
        ms = [m if g is None else b1 * m + (1 - b1) * g for m, g in zip(state[:n], grads)]
        vs = [v if g is None else b2 * v + (1 - b2) * (g * g) for v, g in zip(state[n:], grads)]
        c1, c2 = 1 - b1 ** (k + 1), 1 - b2 ** (k + 1)
        new = [w if g is None else w - (lr / c1) * m / (safe_sqrt(v / c2) + self.eps)
               for w, g, m, v, lr in zip(ws, grads, ms, vs, lrs)]
        return new, ms + vs


class RMSprop(InnerOptimizer):
    """RMSprop, as ``torch.optim.RMSprop``: ``v = alpha * v + (1 - alpha) g^2``, ``w - lr * g / (sqrt(v) + eps)``."""

    name = "rmsprop"

    def __init__(self, alpha: float = 0.99, eps: float = 1e-8):
        self.alpha, self.eps = _fraction("alpha", alpha), checks.rate("eps", eps)

    def init(self, ws):
        return [nx.zeros_like(w) for w in ws]

    def step(self, k, ws, grads, lrs, state):
        vs = [v if g is None else self.alpha * v + (1 - self.alpha) * (g * g) for v, g in zip(state, grads)]
        return [w if g is None else w - lr * g / (safe_sqrt(v) + self.eps)
                for w, g, v, lr in zip(ws, grads, vs, lrs)], vs


OPTIMIZERS = {cls.name: cls for cls in (SGD, Momentum, Adam, RMSprop)}


def make(value: str | InnerOptimizer | dict) -> InnerOptimizer:
    """An inner optimizer from its name (with its defaults), itself, or a ``config()``."""
    if isinstance(value, InnerOptimizer):
        return value
    if isinstance(value, dict) and value.get("name") in OPTIMIZERS:
        settings = {k: v for k, v in value.items() if k != "name"}
        return OPTIMIZERS[value["name"]](**settings)
    if isinstance(value, str) and value in OPTIMIZERS:
        return OPTIMIZERS[value]()
    raise ValueError(f"inner_optimizer must be one of {tuple(OPTIMIZERS)} or a neurenix.meta.inner_optimizers."
                     f"InnerOptimizer, got {value!r}")


def _fraction(name: str, value: object) -> float:
    value = checks.rate(name, value)
    if value >= 1:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return value
