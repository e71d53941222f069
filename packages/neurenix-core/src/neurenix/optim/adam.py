"""Adam and AdamW."""

from __future__ import annotations

from ..arguments import boolean, number
from ..capture import recording
from ..ops.elementwise import maximum
from ..tensor import zeros_like
from ._steps import count_steps, grad_of
from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) as PyTorch implements it; ``weight_decay`` adds ``wd*p`` to the gradient;
    ``amsgrad`` (Reddi et al., 2018) divides by the largest second moment seen so far."""

    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))

    def _check_hyper(self, group: dict) -> None:
        name = type(self).__name__
        number(group["lr"], "lr", name, minimum=0.0)
        number(group["eps"], "eps", name, minimum=0.0)
        number(group["weight_decay"], "weight_decay", name, minimum=0.0)
        boolean(group["amsgrad"], "amsgrad", name)
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
            if group["amsgrad"] and "max_exp_avg_sq" not in s:
                s["max_exp_avg_sq"] = zeros_like(p)
            states.append(s)
        if group["amsgrad"]:
            self._update_amsgrad(group, params, states)
            return
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


    def _update_amsgrad(self, group: dict, params: list, states: list) -> None:
        """The AMSGrad variant, composed of Tensor ops (no fused kernel has it)."""
        lr, (beta1, beta2), wd, eps = group["lr"], group["betas"], group["weight_decay"], group["eps"]
        factors = count_steps(params, states, lambda step: (lr / (1 - beta1 ** step), (1 - beta2 ** step) ** 0.5))
        op = f"{type(self).__name__}.step"
        for p, s, (step_size, bias2_sqrt) in zip(params, states, factors):
            g = -grad_of(p) if group["maximize"] else grad_of(p)
            if wd and self._decoupled:
                p._set((p * (1 - lr * wd))._data, op)
            elif wd:
                g = g + p * wd
            m = s["exp_avg"] * beta1 + g * (1 - beta1)
            v = s["exp_avg_sq"] * beta2 + g * g * (1 - beta2)
            v_max = maximum(s["max_exp_avg_sq"], v)
            for key, new in (("exp_avg", m), ("exp_avg_sq", v), ("max_exp_avg_sq", v_max)):
                s[key]._set(new._data, op)
            p._set((p - m / (v_max.sqrt() / bias2_sqrt + eps) * step_size)._data, op)


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
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
