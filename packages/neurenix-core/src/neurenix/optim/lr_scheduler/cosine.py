"""Cosine annealing (Loshchilov & Hutter, SGDR) as PyTorch computes it: without restarts, step by step; with warm
restarts, in closed form."""

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


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR: cosine annealing from each group's initial rate to ``eta_min`` over a cycle of ``T_0`` epochs, then a
    restart at the initial rate, each cycle ``T_mult`` times as long as the one before. ``T_cur`` is the position
    in the current cycle and ``T_i`` its length (PyTorch's attributes).

    ``step(epoch)`` goes to ``epoch``, which may be fractional (``step(epoch + i / batches)`` after batch ``i``),
    as PyTorch allows: here it is not deprecated. The cycle of an epoch is found by counting (PyTorch's float
    logarithm misses a few restarts: ``T_0=1, T_mult=3``, epoch 121 say), and so is that of a resumed
    ``last_epoch`` (PyTorch's counts one restart at most)."""

    def __init__(self, optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0,  # noqa: N803 - PyTorch's names
                 last_epoch: int = -1):
        name = "CosineAnnealingWarmRestarts"
        self.T_0 = integer(T_0, "T_0", name, minimum=1)
        self.T_mult = integer(T_mult, "T_mult", name, minimum=1)
        self.eta_min = number(eta_min, "eta_min", name)
        self.T_i, self.T_cur = self.T_0, last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        factor = (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
        return [self.eta_min + (base - self.eta_min) * factor for base in self.base_lrs]

    def step(self, epoch: float | None = None) -> None:
        """Advance one epoch, or go to ``epoch`` (a float: a point within that epoch); set each group's ``lr``."""
        self._step_count += 1
        if epoch is None and self._is_initial:
            epoch = self.last_epoch + 1  # epoch 0, or the one after a resumed last_epoch
        if epoch is None:
            self.last_epoch += 1
            self.T_cur += 1
            if self.T_cur >= self.T_i:
                self.T_cur, self.T_i = self.T_cur % self.T_i, self.T_i * self.T_mult
        else:
            epoch = number(epoch, "epoch", "CosineAnnealingWarmRestarts.step", minimum=0.0)
            self.T_cur, self.T_i = self._position(epoch)
            self.last_epoch = math.floor(epoch)
        self._set_lrs(self.get_lr())

    def _position(self, epoch: float) -> tuple:
        """(T_cur, T_i) at ``epoch``: the cycle it falls in, by counting cycles (few: each is T_mult times longer)."""
        if self.T_mult == 1:
            return epoch % self.T_0, self.T_0
        start, length = 0, self.T_0
        while epoch >= start + length:
            start, length = start + length, length * self.T_mult
        return epoch - start, length
