"""Adagrad (Duchi et al., 2011), as PyTorch implements it: a decaying rate and an initial accumulator."""

from __future__ import annotations

from ..arguments import number
from ..tensor import full_like
from ._steps import count_steps, grad_of, signed_decayed
from .optimizer import Optimizer


class Adagrad(Optimizer):
    """``sum += g^2``; ``p -= clr * g / (sqrt(sum) + eps)`` with ``clr = lr / (1 + (step - 1) * lr_decay)``.
    As in PyTorch, each parameter's state (``step``, ``sum``) is made at construction."""

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, maximize: bool = False):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps,
                                      maximize=maximize))
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    def _check_hyper(self, group: dict) -> None:
        for key in ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            number(group[key], key, "Adagrad", minimum=0.0)

    def _update(self, group: dict, params: list) -> None:
        lr, decay = group["lr"], group["lr_decay"]
        states = [self._init_state(p, group) for p in params]
        rates = count_steps(params, states, lambda step: (lr / (1 + (step - 1) * decay),))
        for p, s, (clr,) in zip(params, states, rates):
            g = signed_decayed(p, grad_of(p), group["weight_decay"], group["maximize"])
            total = s["sum"] + g * g
            s["sum"]._set(total._data, "Adagrad.step")
            p._set((p - g / (total.sqrt() + group["eps"]) * clr)._data, "Adagrad.step")

    def _init_state(self, p, group: dict) -> dict:
        s = self.state[p]
        if not s:  # (a group added later gets its state at its first step)
            s.update(step=0, sum=full_like(p, float(group["initial_accumulator_value"])))
        return s
