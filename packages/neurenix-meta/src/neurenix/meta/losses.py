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
        return nx.stack([scalar_loss(loss_fn(pred[t], targets[t]), indices[t] if indices else t)
                         for t in range(pred.shape[0])])
    if labels is not None:
        _check_outputs(pred, classes, indices)
        t, n, c = pred.shape
        return F.cross_entropy(pred.reshape(t * n, c), labels.reshape(t * n), reduction="none").reshape(t, n).mean(1)
    if pred.shape != targets.shape:
        raise ShapeError(f"tasks {list(indices)}: predictions of shape {tuple(pred.shape[1:])} per task do not match "
                         f"targets of shape {tuple(targets.shape[1:])} (mean squared error needs equal shapes; class "
                         "labels are int64 indices of shape (rows,) or one-hot float rows)")
    d = pred - targets
    return (d * d).mean(tuple(range(1, d.ndim)))  # over everything but the task axis, without a flatten node


def scalar_loss(loss: object, task: int) -> Tensor:
    """``loss_fn``'s value for one task, which must be one number: a loss of any other shape would be
    summed silently into the meta-objective."""
    if not isinstance(loss, Tensor):
        raise TypeError(f"loss_fn must return a scalar neurenix Tensor, got {type(loss).__name__} for task {task}")
    if loss.numel() != 1 or not loss.is_floating_point():
        raise ShapeError(f"loss_fn must return one floating-point number per task, got a {loss.dtype} tensor of "
                         f"shape {tuple(loss.shape)} for task {task} (reduce it, e.g. with .mean())")
    return loss.reshape(())


def correct(pred: Tensor, labels: Tensor) -> Tensor:
    """How many rows are classified right, over all tasks (an int64 scalar tensor)."""
    return (pred.argmax(dim=-1) == labels).long().sum()
