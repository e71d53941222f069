"""Adadelta (Zeiler, 2012), as PyTorch implements it (with a learning rate scaling the step)."""

from __future__ import annotations

from ..arguments import number
from ..tensor import zeros_like
from ._steps import count_steps, grad_of, signed_decayed
from .optimizer import Optimizer


class Adadelta(Optimizer):
    """``v = rho*v + (1-rho)*g^2``; ``d = sqrt(u + eps) / sqrt(v + eps) * g``; ``u = rho*u + (1-rho)*d^2``;
    ``p -= lr * d``."""

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0,
                 maximize: bool = False):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize))

    def _check_hyper(self, group: dict) -> None:
        number(group["rho"], "rho", "Adadelta", minimum=0.0, maximum=1.0)
        for key in ("lr", "eps", "weight_decay"):
            number(group[key], key, "Adadelta", minimum=0.0)

    def _update(self, group: dict, params: list) -> None:
        rho, eps = group["rho"], group["eps"]
        states = []
        for p in params:
            s = self.state[p]
            if not s:
                s.update(step=0, square_avg=zeros_like(p), acc_delta=zeros_like(p))
            states.append(s)
        count_steps(params, states)
        for p, s in zip(params, states):
            g = signed_decayed(p, grad_of(p), group["weight_decay"], group["maximize"])
            square_avg = s["square_avg"] * rho + g * g * (1 - rho)
            delta = (s["acc_delta"] + eps).sqrt() / (square_avg + eps).sqrt() * g
            acc_delta = s["acc_delta"] * rho + delta * delta * (1 - rho)
            s["square_avg"]._set(square_avg._data, "Adadelta.step")
            s["acc_delta"]._set(acc_delta._data, "Adadelta.step")
            p._set((p - delta * group["lr"])._data, "Adadelta.step")
