"""The task axis: one module call for a batch of tasks (what makes meta-learning fast).

Inside ``task_batch(n)`` a module's input holds the rows of ``n`` tasks one after another (task-major:
shape ``(n * rows, ...)``), and a parameter may carry a leading task axis: one value per task, as MAML's
adapted weights do. Layers that hold parameters or mix rows honour it: Linear and Conv2d apply task
``t``'s weights to task ``t``'s rows, BatchNorm takes its statistics per task. Row-wise layers
(activations, pooling, Flatten, Dropout) need nothing, which is why the rows are merged rather than
given a new axis. ``neurenix.func.batched_call`` sets this up from (tasks, rows, ...) inputs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import ShapeError
from ..tensor import Tensor

_state = threading.local()


def task_count() -> int:
    """How many tasks the current module call holds (0 outside ``task_batch``)."""
    return getattr(_state, "tasks", 0)


@contextmanager
def task_batch(n: int) -> Iterator[None]:
    """Within this block, module calls run ``n`` tasks at once (see the module docstring)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"task_batch: the number of tasks must be a positive int, got {n!r}")
    old = task_count()
    _state.tasks = n
    try:
        yield
    finally:
        _state.tasks = old


def has_task_axis(param: Tensor, ndim: int, layer: str) -> bool:
    """Whether ``param`` (a layer's parameter of ``ndim`` dimensions) carries a task axis in front."""
    if param.ndim == ndim:
        return False
    n = task_count()
    if param.ndim != ndim + 1 or param.shape[0] != n:
        where = f"inside task_batch({n})" if n else "outside task_batch"
        raise ShapeError(f"{layer}: parameter of shape {param.shape} has neither {ndim} dimensions nor a leading "
                         f"task axis of {n} ({where})")
    return True


def split_tasks(x: Tensor, n: int, layer: str) -> Tensor:
    """``(n * rows, ...)`` -> ``(n, rows, ...)``, with an error naming the layer if the rows do not split."""
    if x.ndim == 0 or x.shape[0] % n:
        raise ShapeError(f"{layer}: input of shape {x.shape} does not hold {n} tasks of equal row counts on axis 0")
    return x.reshape(n, x.shape[0] // n, *x.shape[1:])
