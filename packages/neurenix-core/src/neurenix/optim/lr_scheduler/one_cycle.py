"""OneCycleLR (Smith & Topin, super-convergence): the rate rises to ``max_lr`` and anneals far below the start,
momentum moving the other way."""

from __future__ import annotations

import math

from ...arguments import boolean, choice, integer, number
from ..optimizer import Optimizer
from .scheduler import LRScheduler


def _per_group(value, name: str, optimizer: Optimizer) -> list:
    groups = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != groups:
            raise ValueError(f"OneCycleLR: expected {groups} values of {name} (one per parameter group), "
                             f"got {len(value)}")
        return [number(v, name, "OneCycleLR") for v in value]
    return [number(value, name, "OneCycleLR")] * groups


def _anneal_cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def _anneal_linear(start: float, end: float, pct: float) -> float:
    return (end - start) * pct + start


class OneCycleLR(LRScheduler):
    """PyTorch's one-cycle policy over ``total_steps`` (or ``epochs * steps_per_epoch``) steps: from
    ``max_lr / div_factor`` up to ``max_lr`` over ``pct_start`` of them, then down to
    ``initial_lr / final_div_factor`` (three phases with ``three_phase=True``). With ``cycle_momentum`` the
    optimizer's ``momentum`` (or Adam's ``beta1``) goes from ``max_momentum`` to ``base_momentum`` and back.
    Stepping past ``total_steps`` is an error."""

    def __init__(self, optimizer: Optimizer, max_lr, total_steps: int | None = None, epochs: int | None = None,
                 steps_per_epoch: int | None = None, pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = True, base_momentum=0.85, max_momentum=0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False, last_epoch: int = -1):
        name = "OneCycleLR"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name}: {type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if total_steps is not None:
            self.total_steps = integer(total_steps, "total_steps", name, minimum=1)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (integer(epochs, "epochs", name, minimum=1)
                                * integer(steps_per_epoch, "steps_per_epoch", name, minimum=1))
        else:
            raise ValueError(f"{name}: give total_steps, or epochs and steps_per_epoch")
        pct_start = number(pct_start, "pct_start", name, minimum=0.0, maximum=1.0)
        self._schedule_phases = self._phases(pct_start, boolean(three_phase, "three_phase", name))
        self._anneal_strategy = choice(anneal_strategy, "anneal_strategy", name, ("cos", "linear"))
        max_lrs = _per_group(max_lr, "max_lr", optimizer)
        if last_epoch == -1:
            for group, top in zip(optimizer.param_groups, max_lrs):
                group["initial_lr"] = top / div_factor
                group["max_lr"] = top
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = boolean(cycle_momentum, "cycle_momentum", name)
        if self.cycle_momentum:
            self._init_momentum(max_momentum, base_momentum, last_epoch)
        super().__init__(optimizer, last_epoch)

    def _phases(self, pct_start: float, three_phase: bool) -> list[dict]:
        up = float(pct_start * self.total_steps) - 1
        last = self.total_steps - 1
        if three_phase:
            return [dict(end_step=up, start_lr="initial_lr", end_lr="max_lr",
                         start_momentum="max_momentum", end_momentum="base_momentum"),
                    dict(end_step=float(2 * pct_start * self.total_steps) - 2, start_lr="max_lr",
                         end_lr="initial_lr", start_momentum="base_momentum", end_momentum="max_momentum"),
                    dict(end_step=last, start_lr="initial_lr", end_lr="min_lr",
                         start_momentum="max_momentum", end_momentum="max_momentum")]
        return [dict(end_step=up, start_lr="initial_lr", end_lr="max_lr",
                     start_momentum="max_momentum", end_momentum="base_momentum"),
                dict(end_step=last, start_lr="max_lr", end_lr="min_lr",
                     start_momentum="base_momentum", end_momentum="max_momentum")]

    def _init_momentum(self, max_momentum, base_momentum, last_epoch: int) -> None:
        defaults = self.optimizer.defaults
        if "momentum" not in defaults and "betas" not in defaults:
            raise ValueError(f"OneCycleLR: cycle_momentum needs an optimizer with momentum or betas; "
                             f"{type(self.optimizer).__name__} has neither (pass cycle_momentum=False)")
        self.use_beta1 = "betas" in defaults
        tops = _per_group(max_momentum, "max_momentum", self.optimizer)
        bases = _per_group(base_momentum, "base_momentum", self.optimizer)
        if last_epoch == -1:
            for group, top, base in zip(self.optimizer.param_groups, tops, bases):
                self._set_momentum(group, top)
                group["max_momentum"], group["base_momentum"] = top, base

    def _set_momentum(self, group: dict, value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {step} times, past total_steps={self.total_steps}")
        anneal = _anneal_cos if self._anneal_strategy == "cos" else _anneal_linear
        lrs = []
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end = phase["end_step"]
                if step <= end or i == len(self._schedule_phases) - 1:
                    pct = (step - start) / (end - start)
                    lrs.append(anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct))
                    if self.cycle_momentum:
                        self._set_momentum(group, anneal(group[phase["start_momentum"]],
                                                         group[phase["end_momentum"]], pct))
                    break
                start = end
        return lrs
