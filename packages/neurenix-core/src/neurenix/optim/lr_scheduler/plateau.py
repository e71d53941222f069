"""ReduceLROnPlateau: cut the rate when a metric stops improving."""

from __future__ import annotations

import math

from ...arguments import choice, integer, number
from ..optimizer import Optimizer
from .scheduler import LRScheduler


class ReduceLROnPlateau(LRScheduler):
    """Multiply each group's rate by ``factor`` (not below ``min_lr``) once the metric passed to ``step(metric)``
    has not improved for more than ``patience`` epochs, then wait ``cooldown`` epochs. Improvement is relative
    (``threshold_mode="rel"``: below ``best * (1 - threshold)`` in ``"min"`` mode) or absolute; a change of
    ``eps`` or less is not made."""

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0, min_lr=0, eps: float = 1e-8):
        name = "ReduceLROnPlateau"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name}: {type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        self.factor = number(factor, "factor", name, minimum=0.0)
        if self.factor >= 1.0:
            raise ValueError(f"{name}: factor must be below 1.0, got {factor}")
        groups = len(optimizer.param_groups)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != groups:
                raise ValueError(f"{name}: expected {groups} min_lrs (one per parameter group), got {len(min_lr)}")
            self.default_min_lr = None
            self.min_lrs = [number(m, "min_lr", name, minimum=0.0) for m in min_lr]
        else:
            self.default_min_lr = number(min_lr, "min_lr", name, minimum=0.0)
            self.min_lrs = [self.default_min_lr] * groups
        self.patience = integer(patience, "patience", name, minimum=0)
        self.cooldown = integer(cooldown, "cooldown", name, minimum=0)
        self.eps = number(eps, "eps", name, minimum=0.0)
        self.mode = choice(mode, "mode", name, ("min", "max"))
        self.threshold = number(threshold, "threshold", name)
        self.threshold_mode = choice(threshold_mode, "threshold_mode", name, ("rel", "abs"))
        self.mode_worse = math.inf if self.mode == "min" else -math.inf
        self.last_epoch = 0
        self._last_lr = self._current()
        self.best, self.cooldown_counter, self.num_bad_epochs = self.mode_worse, 0, 0

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def step(self, metrics, epoch: int | None = None) -> None:  # a metric, unlike the base class
        """Take this epoch's metric (a number or a one-element tensor) and cut the rates if it is time."""
        current = float(metrics)
        self.last_epoch = self.last_epoch + 1 if epoch is None else integer(epoch, "epoch", "ReduceLROnPlateau.step")
        if self._is_better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = self._current()

    def _is_better(self, a: float) -> bool:
        best, t = self.best, self.threshold
        if self.mode == "min":
            return a < (best * (1.0 - t) if self.threshold_mode == "rel" else best - t)
        return a > (best * (1.0 + t) if self.threshold_mode == "rel" else best + t)

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(f"ReduceLROnPlateau: the optimizer has {len(groups)} parameter groups but min_lr "
                                   f"names {len(self.min_lrs)}; set min_lrs to one per group")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, low in zip(groups, self.min_lrs):
            old = float(group["lr"])
            new = max(old * self.factor, low)
            if old - new > self.eps:
                group["lr"] = new
