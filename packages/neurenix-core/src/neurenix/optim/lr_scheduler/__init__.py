"""Learning-rate schedulers, as PyTorch's ``torch.optim.lr_scheduler``: same constructor arguments, defaults,
``step()``, ``get_last_lr()``, ``state_dict()`` and ``last_epoch`` semantics.

A scheduler changes ``group["lr"]``, which is a hyper-parameter a compiled step (``neurenix.compile``) guards
on: a new rate traces the step again, so a schedule that changes it at every step is best used eagerly (or
outside the compiled function: ``neurenix.meta``'s ``meta_learn(scheduler=...)`` compiles the meta-gradient only).
"""

from .cosine import CosineAnnealingLR, CosineAnnealingWarmRestarts
from .lambda_lr import LambdaLR
from .linear import LinearLR
from .one_cycle import OneCycleLR
from .plateau import ReduceLROnPlateau
from .scheduler import LRScheduler
from .step import ExponentialLR, MultiStepLR, StepLR

__all__ = ["CosineAnnealingLR", "CosineAnnealingWarmRestarts", "ExponentialLR", "LRScheduler", "LambdaLR", "LinearLR",
           "MultiStepLR", "OneCycleLR", "ReduceLROnPlateau", "StepLR"]
