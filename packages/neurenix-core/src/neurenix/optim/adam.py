"""Adam and AdamW."""

from __future__ import annotations

from ..arguments import number
from ..capture import recording
from ..tensor import zeros_like
from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) as PyTorch implements it; ``weight_decay`` adds ``wd*p`` to the gradient."""

    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, maximize: bool = False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize))

    def _check_hyper(self, group: dict) -> None:
        name = type(self).__name__
        number(group["lr"], "lr", name, minimum=0.0)
        number(group["eps"], "eps", name, minimum=0.0)
        number(group["weight_decay"], "weight_decay", name, minimum=0.0)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair of numbers in [0, 1), got {betas!r}")
        group["betas"] = tuple(number(b, "betas", name, minimum=0.0, maximum=1.0) for b in betas)
        if group["betas"][0] == 1.0 or group["betas"][1] == 1.0:
            raise ValueError(f"{name}: betas must be in [0, 1), got {betas!r}")

    def _update(self, group: dict, params: list) -> None:
        states = []
        for p in params:
            s = self.state[p]
            if not s:
                s.update(step=0, exp_avg=zeros_like(p), exp_avg_sq=zeros_like(p))
            states.append(s)
        beta1, beta2 = group["betas"]
        new_p, new_m, new_v = recording.host(
            _adam, params[0]._device, states, [p._data for p in params], [self._grad_buffer(p) for p in params],
            [s["exp_avg"]._data for s in states], [s["exp_avg_sq"]._data for s in states],
            (group["lr"], beta1, beta2, group["eps"], group["weight_decay"], self._decoupled, group["maximize"]))
        op = f"{type(self).__name__}.step"
        for p, s, data, m, v in zip(params, states, new_p, new_m, new_v):
            p._set(data, op)
            s["exp_avg"]._set(m, op)
            s["exp_avg_sq"]._set(v, op)


def _adam(device, states: list, params: list, grads: list, exp_avgs: list, exp_avg_sqs: list, hyper: tuple):
    """Count a step for each parameter and run the fused kernel, once per set of parameters at the same count
    (usually all of them). A host step: a compiled step reads and advances the counts at every replay."""
    by_step: dict = {}
    for i, s in enumerate(states):
        s["step"] += 1
        by_step.setdefault(s["step"], []).append(i)
    out = [list(params), list(exp_avgs), list(exp_avg_sqs)]
    for step, idx in by_step.items():
        lr, beta1, beta2, eps, weight_decay, decoupled, maximize = hyper
        results = device.kernels.adam_step([params[i] for i in idx], [grads[i] for i in idx],
                                           [exp_avgs[i] for i in idx], [exp_avg_sqs[i] for i in idx], step, lr,
                                           beta1, beta2, eps, weight_decay, decoupled, maximize)
        for column, new in zip(out, results):
            for i, b in zip(idx, new):
                column[i] = b
    return out


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019): ``p *= 1 - lr*wd`` before the step."""

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, maximize)
