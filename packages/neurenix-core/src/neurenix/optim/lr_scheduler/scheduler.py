"""The base class of learning-rate schedulers: PyTorch's ``LRScheduler`` (``last_epoch``, ``base_lrs``,
``initial_lr`` in each parameter group, ``step()``, ``get_last_lr()``, ``state_dict()``)."""

from __future__ import annotations

import warnings

from ...arguments import integer
from ..optimizer import Optimizer

_EPOCH_DEPRECATED = ("passing an epoch to scheduler.step() is deprecated (as in PyTorch): call step() once per "
                     "epoch; where a closed form exists it sets the rate for that epoch")


class LRScheduler:
    """Sets each parameter group's ``lr`` from ``last_epoch``. Subclasses define ``get_lr()`` (the next rates
    from the current ones, PyTorch's chainable form) and may define ``_get_closed_form_lr()``.

    At construction with ``last_epoch=-1`` each group gets ``initial_lr`` (its current ``lr``) and the
    scheduler takes its first step (``last_epoch`` becomes 0); to resume, pass the last epoch done, with the
    optimizer's groups already holding ``initial_lr`` (a loaded optimizer state dict does).
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: {type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        last_epoch = integer(last_epoch, "last_epoch", type(self).__name__, minimum=-1)
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"{type(self).__name__}: param_groups[{i}] has no 'initial_lr', which resuming "
                                   f"with last_epoch={last_epoch} needs (load the optimizer's state dict first)")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        """The rates for ``last_epoch`` (already advanced), from the groups' current ones."""
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        """The rates the last ``step()`` set, one per parameter group."""
        return self._last_lr

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch (call it after ``optimizer.step()``) and set each group's ``lr``."""
        if self._step_count == 1 and not getattr(self.optimizer, "_opt_called", False):
            warnings.warn("lr_scheduler.step() was called before optimizer.step(): the first value of the schedule "
                          "is skipped (call optimizer.step() first, as in PyTorch)", UserWarning, stacklevel=2)
        self._step_count += 1
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            warnings.warn(_EPOCH_DEPRECATED, UserWarning, stacklevel=2)
            self.last_epoch = integer(epoch, "epoch", f"{type(self).__name__}.step", minimum=0)
            closed = getattr(self, "_get_closed_form_lr", None)
            values = closed() if closed is not None else self.get_lr()
        self._set_lrs(values)

    def _set_lrs(self, values: list[float]) -> None:
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = self._current()

    def state_dict(self) -> dict:
        """Every attribute but the optimizer."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what ``state_dict()`` returned."""
        self.__dict__.update(state_dict)

    def _groups_with_base(self):
        return zip(self.optimizer.param_groups, self.base_lrs)

    def _current(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]
