"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

from ..arguments import number
from ..tensor import _wrap
from .optimizer import Optimizer


class SGD(Optimizer):
    """PyTorch's SGD: ``b = momentum*b + (1-dampening)*g`` (``b = g`` at first), ``p -= lr*b``
    (``g + momentum*b`` with Nesterov), with ``g += weight_decay*p`` first."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, maximize: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize))

    def _check_hyper(self, group: dict) -> None:
        for key in ("lr", "momentum", "dampening", "weight_decay"):
            number(group[key], key, "SGD", minimum=0.0 if key != "dampening" else None)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0")

    def _update(self, group: dict, params: list) -> None:
        k = params[0]._device.kernels
        states = [self.state.setdefault(p, {}) for p in params]
        bufs = [s["momentum_buffer"]._data if "momentum_buffer" in s else None for s in states]
        new_p, new_b = k.sgd_step([p._data for p in params], [self._grad_buffer(p) for p in params], bufs,
                                  group["lr"], group["momentum"], group["dampening"], group["nesterov"],
                                  group["weight_decay"], group["maximize"])
        for p, s, data, buf in zip(params, states, new_p, new_b):
            p._set(data, "SGD.step")
            if buf is None:
                continue
            if "momentum_buffer" in s:  # (changed in place: a compiled step finds it where it was)
                s["momentum_buffer"]._set(buf, "SGD.step")
            else:
                s["momentum_buffer"] = _wrap(buf, p._device)
