"""LinearLR: the rate moves linearly from ``start_factor`` to ``end_factor`` times the initial rate."""

from __future__ import annotations

from ...arguments import integer, number
from .scheduler import LRScheduler


class LinearLR(LRScheduler):
    """Multiply each group's initial rate by a factor that moves linearly from ``start_factor`` (epoch 0) to
    ``end_factor`` (epoch ``total_iters`` and after), computed recursively from the current rate as PyTorch does
    (so that outside changes to it carry on). A warm-up, as a rule."""

    def __init__(self, optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5,
                 last_epoch: int = -1):
        self.start_factor = number(start_factor, "start_factor", "LinearLR", above=0.0, maximum=1.0)
        self.end_factor = number(end_factor, "end_factor", "LinearLR", minimum=0.0, maximum=1.0)
        self.total_iters = integer(total_iters, "total_iters", "LinearLR", minimum=1)
        super().__init__(optimizer, last_epoch)

    def _factor(self, epoch: int) -> float:
        done = min(epoch, self.total_iters) / self.total_iters
        return self.start_factor + (self.end_factor - self.start_factor) * done

    def get_lr(self) -> list[float]:
        epoch = self.last_epoch
        if epoch == 0:
            return [lr * self.start_factor for lr in self._current()]
        if self._is_initial or epoch > self.total_iters:
            return self._current()
        # factor(epoch - 1) > 0 here: only the last factor may be 0 (end_factor=0, at epoch total_iters)
        ratio = self._factor(epoch) / self._factor(epoch - 1)
        return [lr * ratio for lr in self._current()]

    def _get_closed_form_lr(self) -> list[float]:
        return [base * self._factor(self.last_epoch) for base in self.base_lrs]
