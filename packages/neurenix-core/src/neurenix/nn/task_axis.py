"""The task axis: one module call for a batch of tasks (what makes meta-learning fast).

Inside ``task_batch(n)`` a module's input holds the rows of ``n`` tasks one after another (task-major:
shape ``(n * rows, ...)``), and a parameter may carry a leading task axis: one value per task, as MAML's
adapted weights do. Layers that hold parameters or mix rows honour it: Linear, Conv1d, Conv2d, Embedding,
LayerNorm, GroupNorm, MultiheadAttention's projections and the recurrent layers (whose batch axis holds the
tasks' sequences) apply task ``t``'s weights to task ``t``'s rows, BatchNorm takes its statistics per task.
Row-wise layers (activations, pooling, Flatten, Dropout) need nothing, which is why the rows are merged rather
than given a new axis. ``neurenix.func.batched_call`` sets this up from (tasks, rows, ...) inputs; for a model
made only of layers that take the task axis as it is (Linear, Embedding, LayerNorm, activations, Dropout:
``stacks_tasks``), it passes the inputs unmerged, saving a reshape per layer.
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


def tasks_stacked() -> bool:
    """Whether the current call's inputs keep the task axis, ``(n, rows, ...)``, instead of merged rows."""
    return getattr(_state, "stacked", False)


@contextmanager
def task_batch(n: int, stacked: bool = False) -> Iterator[None]:
    """Within this block, module calls run ``n`` tasks at once (see the module docstring). ``stacked``:
    inputs are ``(n, rows, ...)``, which only modules whose class sets ``stacks_tasks`` accept."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"task_batch: the number of tasks must be a positive int, got {n!r}")
    old = task_count(), tasks_stacked()
    _state.tasks, _state.stacked = n, stacked
    try:
        yield
    finally:
        _state.tasks, _state.stacked = old


def stacks_tasks(module) -> bool:
    """Whether ``module`` can run on ``(tasks, rows, ...)`` inputs as they are: its class declares it (row-wise
    layers, Linear) and so do all its submodules. Merging and splitting rows costs a reshape per layer and
    call, which for small networks (MAML's 1-40-40-1) is a sizeable share of a meta-iteration."""
    # the class's own declaration, not an inherited one: a subclass with its own forward may not be row-wise
    return type(module).__dict__.get("stacks_tasks", False) and all(stacks_tasks(m) for m in module.children())


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


def by_task(x: Tensor, n: int, layer: str) -> Tensor:
    """``x`` as ``(n, rows, ...)``: as it is where the inputs keep the task axis (``tasks_stacked``), else split."""
    return x if tasks_stacked() else split_tasks(x, n, layer)
