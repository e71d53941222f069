"""RMSprop (Hinton's lecture 6e), as PyTorch implements it: centered and momentum variants."""

from __future__ import annotations

from ..arguments import boolean, number
from ..tensor import zeros_like
from ._steps import count_steps, grad_of, signed_decayed
from .optimizer import Optimizer


class RMSprop(Optimizer):
    """``v = alpha*v + (1-alpha)*g^2``; ``p -= lr * g / (sqrt(v) + eps)`` (``sqrt(v - mean(g)^2)`` when
    ``centered``; through a momentum buffer ``b = momentum*b + g/avg`` when ``momentum > 0``)."""

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False, maximize: bool = False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered, maximize=maximize))

    def _check_hyper(self, group: dict) -> None:
        for key in ("lr", "alpha", "eps", "weight_decay", "momentum"):
            number(group[key], key, "RMSprop", minimum=0.0)
        boolean(group["centered"], "centered", "RMSprop")

    def _update(self, group: dict, params: list) -> None:
        momentum, centered, alpha = group["momentum"], group["centered"], group["alpha"]
        states = [self._init_state(p, momentum, centered) for p in params]
        count_steps(params, states)
        for p, s in zip(params, states):
            g = signed_decayed(p, grad_of(p), group["weight_decay"], group["maximize"])
            square_avg = s["square_avg"] * alpha + g * g * (1 - alpha)
            s["square_avg"]._set(square_avg._data, "RMSprop.step")
            if centered:
                grad_avg = s["grad_avg"] + (g - s["grad_avg"]) * (1 - alpha)
                s["grad_avg"]._set(grad_avg._data, "RMSprop.step")
                avg = (square_avg - grad_avg * grad_avg).sqrt() + group["eps"]
            else:
                avg = square_avg.sqrt() + group["eps"]
            if momentum > 0:
                buf = s["momentum_buffer"] * momentum + g / avg
                s["momentum_buffer"]._set(buf._data, "RMSprop.step")
                p._set((p - buf * group["lr"])._data, "RMSprop.step")
            else:
                p._set((p - g / avg * group["lr"])._data, "RMSprop.step")

    def _init_state(self, p, momentum: float, centered: bool) -> dict:
        s = self.state[p]
        if not s:
            s.update(step=0, square_avg=zeros_like(p))
            if momentum > 0:
                s["momentum_buffer"] = zeros_like(p)
            if centered:
                s["grad_avg"] = zeros_like(p)
        return s
