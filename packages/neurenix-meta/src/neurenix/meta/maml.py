"""MAML (Finn et al., 2017): learn an initialisation that a few gradient steps adapt to a new task."""

from __future__ import annotations

from neurenix import Tensor
from neurenix.func import batched_call
from neurenix.nn import Module

from .base import MetaLearningModel, inner_loop
from .losses import LossFn, task_losses
from .tasks import Batch


class MAML(MetaLearningModel):
    """Model-Agnostic Meta-Learning, second order, or first order with ``first_order=True``.

    Inner loop: ``inner_steps`` of gradient descent at ``inner_lr`` on each task's support set, from the
    shared initialisation theta. Outer loop: the meta-optimizer steps theta along the gradient of the sum
    of the tasks' query losses at their adapted weights, differentiated through the inner loop (second
    order) or taking the inner gradients as constants (first order).
    """

    def __init__(self, model: Module, inner_lr: float = 0.01, meta_lr: float = 0.001, first_order: bool = False,
                 inner_steps: int = 5):
        super().__init__(model, inner_lr, meta_lr, first_order)
        if not isinstance(inner_steps, int) or inner_steps < 0:
            raise ValueError(f"inner_steps must be an int >= 0, got {inner_steps!r}")
        self.inner_steps = inner_steps

    def adapt_to_task(self, support_x: Tensor, support_y: Tensor, steps: int | None = None,
                      loss_fn: LossFn | None = None) -> Module:
        """A copy of the model after ``steps`` (default ``inner_steps``) inner steps on the support set."""
        return super().adapt_to_task(support_x, support_y, self.inner_steps if steps is None else steps, loss_fn)

    def adapted_parameters(self, batch: Batch, loss_fn: LossFn | None, create_graph: bool) -> dict[str, Tensor]:
        """Each task's weights after the inner loop (a leading task axis), still depending on theta."""
        t = batch.size
        theta = {n: p.unsqueeze(0).expand(t, *p.shape) for n, p in self.trainable().items()}
        return inner_loop(self.model, theta, batch.support_x, batch.support_y, batch.support_labels, self.inner_steps,
                          self.inner_lr, loss_fn, create_graph, batch.classes, batch.indices)

    def task_objective(self, batch: Batch, loss_fn: LossFn | None) -> tuple[Tensor, Tensor]:
        fast = self.adapted_parameters(batch, loss_fn, create_graph=not self.first_order)
        pred = batched_call(self.model, fast, batch.query_x)
        return task_losses(pred, batch.query_y, batch.query_labels, loss_fn, batch.classes, batch.indices), pred
