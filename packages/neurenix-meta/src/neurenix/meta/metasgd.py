"""Meta-SGD (Li et al., 2017): MAML with a learned learning rate for every parameter element."""

from __future__ import annotations

from neurenix.nn import Module

from .maml import MAML, LearnedRates


class MetaSGD(MAML):
    """Meta-SGD: the inner step is ``w - alpha * grad`` with ``alpha`` a learned tensor of ``w``'s shape
    (``inner_lrs[name]``), started at ``inner_lr`` and meta-trained with the initialisation. The paper
    takes one inner step (the default here); with more, every step uses the same ``alpha``. MAML's
    keyword options apply, except ``per_step_lr`` (the rates are already learned).
    """

    def __init__(self, model: Module, inner_lr: float = 0.01, meta_lr: float = 0.001, first_order: bool = False,
                 inner_steps: int = 1, **options):
        if options.pop("per_step_lr", False):
            raise TypeError("MetaSGD learns one rate per parameter element; per_step_lr is MAML's option")
        super().__init__(model, inner_lr, meta_lr, first_order, inner_steps, **options)
        self.inner_lrs = LearnedRates(self, None, self.inner_lr)

    def step_lrs(self, step: int) -> list:
        return [self.inner_lrs[n] for n in self.inner_params]
