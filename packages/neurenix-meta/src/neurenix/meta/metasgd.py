"""Meta-SGD (Li et al., 2017): MAML with a learned learning rate for every parameter element."""

from __future__ import annotations

from collections.abc import Sequence

import neurenix as nx
from neurenix import Tensor
from neurenix.nn import Module

from .maml import INNER_LR, MAML, LearnedRates


class MetaSGD(MAML):
    """Meta-SGD: the inner step is ``w - alpha * grad`` with ``alpha`` a learned tensor of ``w``'s shape
    (``inner_lrs[name]``), started at ``inner_lr`` and meta-trained with the initialisation. The paper
    takes one inner step (the default here); with more, every step uses the same ``alpha``. MAML's
    keyword options apply, except ``per_step_lr`` (the rates are already learned).

    learn2learn's ``MetaSGD(model, lr=..., first_order=..., lrs=...)`` works too: ``lr`` is ``inner_lr``
    (whose default stays 0.01, not learn2learn's 1.0), and ``lrs`` gives the rates' starting values, one
    tensor per adapted parameter in ``model.parameters()`` order. ``clone()`` adapts with the learned rates.
    """

    def __init__(self, model: Module, inner_lr: float = INNER_LR, meta_lr: float = 0.001, first_order: bool = False,
                 inner_steps: int = 1, *, lrs: Sequence[Tensor] | None = None, **options):
        if options.pop("per_step_lr", False):
            raise TypeError("MetaSGD learns one rate per parameter element; per_step_lr is MAML's option")
        super().__init__(model, inner_lr, meta_lr, first_order, inner_steps, **options)
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

    def step_lrs(self, step: int) -> list:
        return [self.inner_lrs[n] for n in self.inner_params]
