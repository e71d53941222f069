"""Per-task losses and accuracy on a batch of tasks (predictions of shape (tasks, rows, ...)).

The rule for ``loss_fn=None``: targets that are class labels (int64 indices or one-hot rows) get
softmax cross-entropy, any other target mean squared error; an explicit ``loss_fn(predictions,
targets)`` always wins and is called once per task with that task's rows.
"""

from __future__ import annotations

from collections.abc import Callable

import neurenix as nx
from neurenix import Tensor
from neurenix.errors import ShapeError
from neurenix.nn import functional as F

LossFn = Callable[[Tensor, Tensor], Tensor]


def _check_outputs(pred: Tensor, classes: int, indices: tuple) -> None:
    if pred.ndim != 3 or pred.shape[-1] < classes:
        raise ShapeError(f"tasks {list(indices)}: labels name {classes} classes but the model outputs shape "
                         f"{tuple(pred.shape[1:])} per task (expected (rows, >= {classes}) class scores)")


def task_losses(pred: Tensor, targets: Tensor, labels: Tensor | None, loss_fn: LossFn | None,
                classes: int = 0, indices: tuple = ()) -> Tensor:
    """The loss of each task, shape (tasks,): ``pred`` and ``targets`` are (tasks, rows, ...)."""
    if loss_fn is not None:
        return nx.stack([loss_fn(pred[t], targets[t]) for t in range(pred.shape[0])])
    if labels is not None:
        _check_outputs(pred, classes, indices)
        t, n, c = pred.shape
        return F.cross_entropy(pred.reshape(t * n, c), labels.reshape(t * n), reduction="none").reshape(t, n).mean(1)
    if pred.shape != targets.shape:
        raise ShapeError(f"tasks {list(indices)}: predictions of shape {tuple(pred.shape[1:])} per task do not match "
                         f"targets of shape {tuple(targets.shape[1:])} (mean squared error needs equal shapes)")
    d = pred - targets
    return (d * d).mean(tuple(range(1, d.ndim)))  # over everything but the task axis, without a flatten node


def correct(pred: Tensor, labels: Tensor) -> Tensor:
    """How many rows are classified right, over all tasks (an int64 scalar tensor)."""
    return (pred.argmax(dim=-1) == labels).long().sum()
