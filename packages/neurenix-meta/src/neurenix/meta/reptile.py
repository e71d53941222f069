"""Reptile (Nichol et al., 2018): move the initialisation toward the weights each task trains to."""

from __future__ import annotations

import neurenix as nx
from neurenix import Tensor
from neurenix.nn import Module

from . import checks
from .base import MetaLearningModel, descent_steps
from .batchnorm import task_call
from .losses import LossFn, correct, task_losses
from .tasks import Batch, swapped


class Reptile(MetaLearningModel):
    """Reptile: train on each task for ``inner_steps`` SGD steps at ``inner_lr`` (theta -> theta'), on its
    support and query sets in turn, then move theta along mean over the batch of (theta' - theta).

    Steps on different sets of a task's examples: the paper's inner loop takes each step on another
    minibatch of the task's data, and its analysis shows why that matters: the update then holds a term that
    raises the inner product of gradients on different examples of one task (what makes a few steps on a
    support set generalise to its queries), which steps on one set throughout lose. Measured, sine regression,
    1-40-40-1, defaults, 3,000 meta-updates, 5-shot, seeds 0-2: 10-step MSE 0.56 with the sets in turn against
    0.85 on the support set alone (docs/reptile.md). A step that would raise the loss on its set is not taken
    and that task's later steps are halved (``descent_steps``, as in ``adapt_to_task``): while every step
    lowers the loss this is plain SGD, and a task on which the seeds' ``inner_lr=0.02`` overshoots (as the
    network's weights grow in meta-training: on sine regression the loss became infinite after about 1,100
    meta-updates, in a run not kept in bench/results) cannot throw theta' away.

    The meta-optimizer is handed theta - mean(theta') as the gradient (the paper: "treat it as a gradient
    and plug it into a more sophisticated optimizer like Adam"). The default is Adam at ``meta_lr``, as for
    the other learners; ``SGD(reptile.parameters(), lr=epsilon)`` gives the plain interpolation theta <-
    theta + epsilon * (mean theta' - theta) of the paper's and the seeds' update rule. A deliberate
    difference from that rule: with the seeds' ``meta_lr=0.001`` the interpolation leaves theta near its
    random start after thousands of meta-updates (measured before the inner loop took the sets in turn, on
    sine regression, 3,000 meta-updates, means over seeds 0-2: 4.1 / 4.9 / 5.5 / 6.0 MSE after 1 / 5 / 10 /
    20 steps, worse with every step; runs not kept in bench/results), while Adam does not (docs/quality.md).
    The reported loss is the query loss at the adapted weights (which the inner loop has trained on: a
    training loss, not a held-out one).
    ``adapt_to_task`` adapts on the support set alone and takes no step that raises its loss (see
    ``MetaLearningModel.adapt_to_task``).
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

    def stacked_gradient(self, stacked: list[Batch], loss_fn: LossFn | None) -> tuple[Tensor, Tensor | None]:
        """Reptile's "gradient", theta - mean(theta') over the tasks, into each parameter's ``.grad``; returns
        the query losses at the adapted weights (summed) and the number right, unread."""
        theta = self.trainable()
        drift = {n: 0.0 for n in theta}  # sum over tasks of theta - theta'
        total, right = 0.0, None
        rates = [self.inner_lr] * len(theta)
        for b in stacked:
            start = {n: p.detach().expand(b.size, *p.shape).requires_grad_() for n, p in theta.items()}
            with nx.enable_grad():  # on support and query sets in turn; no step raises its set's loss
                ws = descent_steps(self.model, list(start), list(start.values()), lambda k: rates, self.inner_steps,
                                   (b, swapped(b)), loss_fn)
                fast = dict(zip(start, ws))
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
