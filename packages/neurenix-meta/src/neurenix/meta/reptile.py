"""Reptile (Nichol et al., 2018): move the initialisation toward the weights each task trains to."""

from __future__ import annotations

import neurenix as nx
from neurenix import Tensor
from neurenix.nn import Module
from neurenix.optim import SGD, Optimizer

from . import checks
from .base import MetaLearningModel, inner_loop
from .batchnorm import task_call
from .losses import LossFn, correct, task_losses
from .tasks import Batch


class Reptile(MetaLearningModel):
    """Reptile: train on each task's support set for ``inner_steps`` SGD steps at ``inner_lr`` (theta ->
    theta'), then move theta <- theta + meta_lr * mean over the batch of (theta' - theta).

    A ``meta_optimizer`` is handed theta - mean(theta') as the gradient; the default, SGD at ``meta_lr``,
    is exactly the interpolation above. The reported loss is the query loss at the adapted weights.

    The defaults (the seeds') make a small interpolation: each meta-update moves theta by 0.001 of the
    way to mean(theta'), so on sine regression a thousand meta-updates leave theta near its random start,
    and adapting it on 5 points for more steps lowers the support loss but over-fits the query points.
    For faster meta-training pass ``meta_optimizer=Adam(reptile.parameters(), lr=reptile.meta_lr)`` (as
    the other learners' default) or a larger ``meta_lr`` (the paper's 0.1 to 1). ``adapt_to_task`` takes
    no step that raises the support loss (see ``MetaLearningModel.adapt_to_task``).
    """

    grad_reduction = "mean"  # the gradient is a mean over the batch's tasks

    inner_steps = checks.Validated(checks.count, 1)

    def __init__(self, model: Module, inner_lr: float = 0.02, meta_lr: float = 0.001, inner_steps: int = 8):
        super().__init__(model, inner_lr, meta_lr, first_order=True)
        self.inner_steps = inner_steps

    def hyperparameters(self) -> dict:
        return super().hyperparameters() | {"inner_steps": self.inner_steps}

    def adapt_to_task(self, support_x: Tensor, support_y: Tensor, steps: int | None = None,
                      loss_fn: LossFn | None = None, compile: bool = True) -> Module:
        """A copy of the model after ``steps`` (default ``inner_steps``) SGD steps on the support set."""
        return super().adapt_to_task(support_x, support_y, self.inner_steps if steps is None else steps, loss_fn,
                                     compile)

    def default_optimizer(self) -> Optimizer:
        """SGD at ``meta_lr``: with Reptile's gradient it is the plain interpolation of the paper."""
        if self._default_optimizer is None:
            self.__dict__["_default_optimizer"] = SGD(self.parameters(), lr=self.meta_lr)
        return self._default_optimizer

    def stacked_gradient(self, stacked: list[Batch], loss_fn: LossFn | None) -> tuple[Tensor, Tensor | None]:
        """Reptile's "gradient", theta - mean(theta') over the tasks, into each parameter's ``.grad``; returns
        the query losses at the adapted weights (summed) and the number right, unread."""
        theta = self.trainable()
        drift = {n: 0.0 for n in theta}  # sum over tasks of theta - theta'
        total, right = 0.0, None
        for b in stacked:
            start = {n: p.detach().expand(b.size, *p.shape).requires_grad_() for n, p in theta.items()}
            with nx.enable_grad():
                fast = inner_loop(self.model, start, b.support_x, b.support_y, b.support_labels, self.inner_steps,
                                  self.inner_lr, loss_fn, False, b.classes, b.indices)
            with nx.no_grad():
                fast = {n: w.detach() for n, w in fast.items()}
                for n, p in theta.items():
                    drift[n] = drift[n] + (p.unsqueeze(0) - fast[n]).sum(0)
                pred = task_call(self.model, fast, b.query_x)
                total = total + task_losses(pred, b.query_y, b.query_labels, loss_fn, b.classes, b.indices).sum()
                if b.query_labels is not None:
                    right = correct(pred, b.query_labels) + (0 if right is None else right)
        for n, p in theta.items():
            p.grad = drift[n] / sum(b.size for b in stacked)
        return total, right

    def task_objective(self, batch, loss_fn):
        """Reptile has no differentiable meta-objective; the query loss after adaptation is reported."""
        raise NotImplementedError("Reptile's meta-update is not the gradient of a loss: use meta_learn, meta_step "
                                  "or meta_gradient")
