"""Cosine annealing (Loshchilov & Hutter, SGDR, without restarts) as PyTorch computes it, step by step."""

from __future__ import annotations

import math

from ...arguments import integer, number
from .scheduler import LRScheduler


class CosineAnnealingLR(LRScheduler):
    """``eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``, computed recursively from the
    current rate (so that outside changes to it carry on, as in PyTorch); past ``T_max`` it rises again."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):  # noqa: N803 - PyTorch's
        self.T_max = integer(T_max, "T_max", "CosineAnnealingLR", minimum=1)
        self.eta_min = number(eta_min, "eta_min", "CosineAnnealingLR")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        epoch, t_max, low = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current()
        if self._step_count == 1 and epoch > 0:  # resumed: start from the closed form
            return self._get_closed_form_lr()
        if (epoch - 1 - t_max) % (2 * t_max) == 0:  # the trough: the ratio below would divide by zero
            rise = (1 - math.cos(math.pi / t_max)) / 2
            return [g["lr"] + (base - low) * rise for g, base in self._groups_with_base()]
        ratio = (1 + math.cos(math.pi * epoch / t_max)) / (1 + math.cos(math.pi * (epoch - 1) / t_max))
        return [ratio * (lr - low) + low for lr in self._current()]

    def _get_closed_form_lr(self) -> list[float]:
        factor = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (base - self.eta_min) * factor for base in self.base_lrs]
