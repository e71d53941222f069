"""Meta-SGD (Li et al., 2017): MAML with a learned learning rate for every parameter element."""

from __future__ import annotations

from collections.abc import Sequence

import neurenix as nx
from neurenix import Tensor
from neurenix.nn import Module

from . import checks
from .maml import INNER_LR, MAML, LearnedRates

MAX_LR = 1.0  # max_lr's default (unless inner_lr is larger): 100 times inner_lr's default


class MetaSGD(MAML):
    """Meta-SGD: the inner step is ``w - alpha * grad`` with ``alpha`` a learned tensor of ``w``'s shape
    (``inner_lrs[name]``), started at ``inner_lr`` and meta-trained with the initialisation. The paper
    takes one inner step (the default here); with more, every step uses the same ``alpha``. MAML's
    keyword options apply, except ``per_step_lr`` (the rates are already learned).

    learn2learn's ``MetaSGD(model, lr=..., first_order=..., lrs=...)`` works too: ``lr`` is ``inner_lr``
    (whose default stays 0.01, not learn2learn's 1.0), and ``lrs`` gives the rates' starting values, one
    tensor per adapted parameter in ``model.parameters()`` order. ``clone()`` adapts with the learned rates.

    The rates stay in ``[0, max_lr]`` (keyword; by default 1.0, or ``inner_lr`` if larger): each is clamped where
    used and projected back after every meta-update, because a negative rate climbs the loss and a large
    one overshoots, and either, repeated over more steps than in training, diverges. ``adapt_to_task``
    moreover takes no step that raises the support loss (see ``MetaLearningModel.adapt_to_task``).
    """

    max_lr = checks.Validated(checks.rate)

    def __init__(self, model: Module, inner_lr: float = INNER_LR, meta_lr: float = 0.001, first_order: bool = False,
                 inner_steps: int = 1, *, lrs: Sequence[Tensor] | None = None, max_lr: float | None = None, **options):
        if options.pop("per_step_lr", False):
            raise TypeError("MetaSGD learns one rate per parameter element; per_step_lr is MAML's option")
        super().__init__(model, inner_lr, meta_lr, first_order, inner_steps, **options)
        self.max_lr = max(MAX_LR, self.inner_lr) if max_lr is None else max_lr
        if self.inner_lr > self.max_lr:
            raise ValueError(f"MetaSGD: inner_lr={self.inner_lr!r} is above max_lr={self.max_lr!r}, the largest "
                             "learned rate; raise max_lr or lower inner_lr")
        self.inner_lrs = LearnedRates(self, None, self.inner_lr)
        if lrs is not None:
            self._start_rates(lrs)

    def _start_rates(self, lrs: Sequence[Tensor]) -> None:
        """Copy learn2learn's ``lrs`` (one tensor per adapted parameter, in order) into the learned rates."""
        lrs = list(lrs)
        if len(lrs) != len(self.inner_params):
            raise ValueError(f"MetaSGD: lrs has {len(lrs)} tensors, expected one per adapted parameter "
                             f"({len(self.inner_params)}: {list(self.inner_params)})")
        for name, value in zip(self.inner_params, lrs):
            rate = self.inner_lrs[name]
            value = value if isinstance(value, Tensor) else nx.tensor(value)
            if tuple(value.shape) != tuple(rate.shape):
                raise ValueError(f"MetaSGD: lrs for {name!r} has shape {tuple(value.shape)}, expected the "
                                 f"parameter's {tuple(rate.shape)}")
            with nx.no_grad():
                rate.copy_(value.detach().to(rate.dtype))
        self.after_meta_step()

    def hyperparameters(self) -> dict:
        return super().hyperparameters() | {"max_lr": self.max_lr}

    def step_lrs(self, step: int) -> list:
        """The learned rates, clamped to [0, max_lr] (they may have been assigned by hand since the last
        meta-update)."""
        return [self.inner_lrs[n].clamp(0.0, self.max_lr) for n in self.inner_params]

    def after_meta_step(self) -> None:
        """Project the learned rates onto [0, max_lr], so that the meta-optimizer cannot carry them out."""
        with nx.no_grad():
            for n in self.inner_params:
                self.inner_lrs[n].clamp_(0.0, self.max_lr)
