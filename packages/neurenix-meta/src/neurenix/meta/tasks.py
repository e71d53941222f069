"""Tasks: checking them once, reading their labels, and stacking tasks of equal shapes along a task axis.

A task is ``(support_x, support_y, query_x, query_y)``. Targets are class labels, either int64 class
indices of shape (rows,) or one-hot float rows of shape (rows, classes), or anything else, which is
read as a regression target. The meta-learners never modify the tasks they are given.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

import neurenix as nx
from neurenix import Tensor
from neurenix.caches import remember
from neurenix.errors import ShapeError

Task = tuple[Tensor, Tensor, Tensor, Tensor]


class Checked(NamedTuple):
    """One task after checking: its tensors, and class indices where its targets are labels. (A named tuple,
    not a frozen dataclass: every task of every meta-batch makes one, and this is several times cheaper.)"""

    index: int
    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor
    support_labels: Tensor | None  # int64 (rows,), None for regression
    query_labels: Tensor | None
    classes: int  # number of classes (0 for regression)
    support_counts: tuple[int, ...]  # support rows per class
    shape_key: tuple  # tasks with equal keys stack: shapes, dtypes and devices (by identity) of the four tensors


@dataclass(frozen=True)
class Batch:
    """Tasks of equal shapes stacked on a leading task axis: x (T, rows, ...), labels (T, rows)."""

    indices: tuple[int, ...]
    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor
    support_labels: Tensor | None
    query_labels: Tensor | None
    classes: int

    @property
    def size(self) -> int:
        return len(self.indices)


def swapped(batch: Batch) -> Batch:
    """``batch`` with its support and query sets exchanged."""
    return replace(batch, support_x=batch.query_x, support_y=batch.query_y, support_labels=batch.query_labels,
                   query_x=batch.support_x, query_y=batch.support_y, query_labels=batch.support_labels)


def _labels(y: Tensor) -> tuple[np.ndarray | None, int]:
    """Class indices of ``y`` if it holds labels (int64 indices or one-hot rows), with the class count."""
    shape, dtype, _ = y.signature  # (one property read: this runs twice a task)
    if dtype is nx.int64 and len(shape) == 1:
        v = y.numpy()
        if v.size and v.min() < 0:
            raise ValueError(f"class labels must be non-negative, got {int(v.min())}")
        return v, int(v.max()) + 1 if v.size else 0
    if dtype.is_floating_point and len(shape) == 2 and shape[1] >= 2:
        v = y.numpy()
        if np.all((v == 0) | (v == 1)) and np.all(v.sum(1) == 1):
            return v.argmax(1), y.shape[1]
    return None, 0


def _shape_error(error: type, task, i: int, what: str) -> Exception:
    sx, sy, qx, qy = task
    shapes = f"support_x {sx.shape}, support_y {sy.shape}, query_x {qx.shape}, query_y {qy.shape}"
    return error(f"task {i}: {what} ({shapes})")


FIELDS = ("support_x", "support_y", "query_x", "query_y")


def _check_shapes(task, i: int, names: Sequence[str] = FIELDS) -> None:
    """What a task's shapes must satisfy; an error naming the task and its shapes otherwise. ``names``
    name the tensors as the caller knows them (adapt_to_task has only a support set)."""
    for name, t in zip(names * 2, task):
        if not isinstance(t, Tensor):
            raise TypeError(f"task {i}: {name} must be a neurenix Tensor, got {type(t).__name__}")
        if t.ndim == 0:
            raise ShapeError(f"task {i}: {name} must have a rows axis, got a scalar")
    sx, sy, qx, qy = task
    if sx.shape[0] != sy.shape[0] or qx.shape[0] != qy.shape[0]:
        raise _shape_error(ShapeError, task, i, "inputs and targets disagree on the number of rows")
    if sx.shape[0] == 0:
        raise _shape_error(ShapeError, task, i, "the support set is empty")
    if qx.shape[0] == 0:
        raise _shape_error(ShapeError, task, i, "the query set is empty (its loss would be the mean of nothing)")
    if sx.shape[1:] != qx.shape[1:]:
        raise _shape_error(ShapeError, task, i, "support and query inputs have different feature shapes")


_shapes_checked: dict = {}  # stacking keys whose shapes passed: tasks of a known key skip those checks


def check_task(task, i: int, names: Sequence[str] = FIELDS) -> Checked:
    """Check one task (a clear error naming task ``i`` and the shapes) and read its labels."""
    if not isinstance(task, (tuple, list)) or len(task) != 4:
        got = f"a {type(task).__name__} of {len(task)}" if isinstance(task, (tuple, list)) else type(task).__name__
        raise ValueError(f"task {i}: expected a (support_x, support_y, query_x, query_y) tuple, got {got}")
    sx, sy, qx, qy = task
    if not (isinstance(sx, Tensor) and isinstance(sy, Tensor) and isinstance(qx, Tensor) and isinstance(qy, Tensor)):
        _check_shapes(task, i, names)  # raises, naming the one that is not a Tensor
    key = (sx.signature, sy.signature, qx.signature, qy.signature)
    if key not in _shapes_checked:  # this runs for every task of every meta-batch: shapes are checked once
        _check_shapes(task, i, names)
        remember(_shapes_checked, key, True)
    try:
        (s_lab, s_cls), (q_lab, q_cls) = _labels(sy), _labels(qy)
    except ValueError as e:
        raise _shape_error(ValueError, task, i, str(e)) from None
    if (s_lab is None) != (q_lab is None) or (s_lab is None and sy.shape[1:] != qy.shape[1:]):
        raise _shape_error(ShapeError, task, i, "support and query targets are of different kinds or shapes")
    if s_lab is None:
        return Checked(i, sx, sy, qx, qy, None, None, 0, (), key)
    classes = max(s_cls, q_cls)
    device = sx.device
    return Checked(i, sx, sy, qx, qy, nx.tensor(s_lab, dtype=nx.int64, device=device),
                   nx.tensor(q_lab, dtype=nx.int64, device=device), classes,
                   tuple(np.bincount(s_lab, minlength=classes).tolist()), key)


def check_tasks(tasks: Sequence) -> list[Checked]:
    """Check every task up front, so that a bad one fails before any training happens."""
    if isinstance(tasks, tuple) and len(tasks) == 4 and all(isinstance(t, Tensor) for t in tasks):
        raise TypeError("tasks must be a list of (support_x, support_y, query_x, query_y) tuples; got one task "
                        "(wrap it in a list)")
    if isinstance(tasks, (Tensor, str, bytes)) or not isinstance(tasks, Iterable):
        raise TypeError(f"tasks must be a list of (support_x, support_y, query_x, query_y) tuples, got "
                        f"{type(tasks).__name__}")
    tasks = list(tasks)
    if not tasks:
        raise ValueError("no tasks given")
    checked = [check_task(t, i) for i, t in enumerate(tasks)]
    kinds = {c.support_labels is None for c in checked}
    if len(kinds) > 1:
        raise ValueError("tasks mix classification (label) and regression targets")
    return checked


def nonfinite(task: Checked) -> list[str]:
    """The names of a task's floating-point tensors that hold NaN or infinite values (read on the host:
    for error messages, not for every step)."""
    return [name for name in FIELDS if getattr(task, name).is_floating_point()
            and not np.isfinite(getattr(task, name).numpy()).all()]


def stack(tasks: Sequence[Checked]) -> Batch:
    """Stack tasks of equal shapes along a new leading task axis."""
    def cat(field):
        return nx.stack([getattr(t, field) for t in tasks])

    labelled = tasks[0].support_labels is not None
    return Batch(tuple(t.index for t in tasks), cat("support_x"), cat("support_y"), cat("query_x"), cat("query_y"),
                 cat("support_labels") if labelled else None, cat("query_labels") if labelled else None,
                 max(t.classes for t in tasks))


# Stacking tasks pays by amortising the fixed cost of each op over many small tasks; once a stack holds
# this many input elements that cost is long amortised, and a larger stack only costs memory and cache
# (second-order MAML on Conv-4, 8 tasks of 80 28x28 images: one stack of 8 took 1.5x the time and 6x the
# memory of stacks of one).
STACK_ELEMENTS = 1 << 16


def batches(tasks: Sequence[Checked], batched: bool = True) -> list[Batch]:
    """Group tasks by shape and number of classes into stacked batches (order of first appearance), each of
    as many tasks as fit in ``STACK_ELEMENTS`` input elements (at least one); or one task a batch."""
    if not batched:
        return [stack([t]) for t in tasks]
    groups: dict[tuple, list[Checked]] = {}
    for t in tasks:
        # by classes too: int64 labels do not show them in the shapes, and a stack takes its tasks' largest
        # count, which would give a 2-way task among 4-way ones of its shapes two empty classes (prototypes 0/0)
        groups.setdefault((t.shape_key, t.classes), []).append(t)
    out = []
    for g in groups.values():
        size = max(1, STACK_ELEMENTS // (g[0].support_x.numel() + g[0].query_x.numel()))
        out += [stack(g[i:i + size]) for i in range(0, len(g), size)]
    return out
