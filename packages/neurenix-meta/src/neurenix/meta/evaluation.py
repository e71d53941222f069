"""``evaluate``: how well a meta-learner adapts to new tasks, as papers report it (mean and 95% interval)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

import neurenix as nx

from . import checks
from .base import MetaLearningModel
from .losses import LossFn, scalar_loss
from .tasks import check_tasks


@dataclass(frozen=True)
class Evaluation:
    """Per-task scores and their summary: ``mean`` and ``ci95``, the half-width of the 95% confidence
    interval of the mean (1.96 standard errors; NaN for a single task). ``metric`` names the score."""

    metric: str
    values: np.ndarray

    @property
    def mean(self) -> float:
        return float(self.values.mean())

    @property
    def ci95(self) -> float:
        n = len(self.values)
        return float(1.96 * self.values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan

    def __str__(self) -> str:
        if self.metric == "accuracy":
            return f"{100 * self.mean:.2f}% ± {100 * self.ci95:.2f}% (accuracy, 95% CI over {len(self.values)} tasks)"
        return f"{self.mean:.4f} ± {self.ci95:.4f} ({self.metric}, 95% CI over {len(self.values)} tasks)"


def evaluate(learner: MetaLearningModel, tasks: Sequence, steps: int | None = None,
             loss_fn: LossFn | None = None, compile: bool = True) -> Evaluation:
    """Adapt ``learner`` to each task's support set (``adapt_to_task`` with ``steps``, the learner's default
    when None) and score the adapted model on the query set: accuracy when the targets are class labels,
    else ``loss_fn`` (default: mean squared error). The learner itself is not changed. A score that is not
    finite (an adaptation that diverged) is an error, not a NaN mean. ``compile`` is ``adapt_to_task``'s: the
    adaptations replay one captured program per shape of support set (False: op by op)."""
    if not isinstance(learner, MetaLearningModel):
        raise TypeError(f"learner must be a neurenix.meta meta-learner, got {type(learner).__name__}")
    steps, loss_fn = None if steps is None else checks.count("steps", steps), checks.function("loss_fn", loss_fn)
    compile = checks.flag("compile", compile)  # noqa: A001
    checked = check_tasks(tasks)
    labelled = checked[0].query_labels is not None
    metric = "accuracy" if labelled and loss_fn is None else "loss" if loss_fn is not None else "mse"
    saved = [(b, b.clone()) for b in learner.buffers()]  # an adapted metric learner runs its own embedding,
    try:  # whose BatchNorm moves its running statistics: they are put back, the learner is not changed
        values = _scores(learner, checked, steps, loss_fn, compile, labelled, metric)
    finally:
        with nx.no_grad():
            for b, old in saved:
                b.copy_(old)
    return Evaluation(metric, np.asarray(values))


def _scores(learner: MetaLearningModel, checked: list, steps: int | None, loss_fn: LossFn | None, compile: bool,
            labelled: bool, metric: str) -> list[float]:
    values = []
    for t in checked:
        adapted = learner.adapt_to_task(t.support_x, t.support_y, steps, loss_fn, compile=compile)
        with nx.no_grad():
            pred = adapted(t.query_x)
            if labelled and loss_fn is None:
                score = (pred.argmax(dim=-1) == t.query_labels).float().mean()
            elif loss_fn is not None:
                score = scalar_loss(loss_fn(pred, t.query_y), t.index)
            else:
                score = ((pred - t.query_y) ** 2).mean()
        values.append(score.item())
        if not math.isfinite(values[-1]):
            raise FloatingPointError(f"evaluate: task {t.index} scored {values[-1]} ({metric}) after adapting "
                                     f"{'' if steps is None else f'{steps} steps '}to its support set: the adaptation "
                                     "diverged (try a smaller inner_lr) or the task holds NaN or infinite values")
    return values
