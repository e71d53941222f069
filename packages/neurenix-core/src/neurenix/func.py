"""Running a module with parameters passed in: ``functional_call``, and for many tasks at once: ``batched_call``."""

from __future__ import annotations

from collections.abc import Mapping

from .errors import ShapeError
from .nn.module import Module
from .nn.task_axis import stacks_tasks, task_batch
from .nn.utils.stateless import _reparametrized
from .tensor import Tensor


def functional_call(module: Module, params: Mapping, *args, tie_weights: bool = True, strict: bool = False,
                    **kwargs):
    """Call ``module(*args, **kwargs)`` with the tensors in ``params`` (dotted names, as in
    ``named_parameters()``) standing in for its parameters and buffers; the module is left unchanged.

    The tensors may carry a graph (MAML's adapted weights do), so gradients flow back to whatever they
    were computed from. Names not given keep the module's own tensors. As in PyTorch: ``args`` may also be
    given as one tuple; ``tie_weights`` (default True) replaces a tensor in every slot that shares it (weights
    tied across layers) when one of its names is given; ``strict`` requires every parameter and buffer to be
    given. A name that is no parameter or buffer raises RuntimeError naming it (PyTorch, unless strict, would
    set an attribute of that name for the call). (``tie_weights`` and ``strict`` are taken by this function,
    never passed on to ``forward``.) Not thread-safe for one module shared across threads. Built on
    ``neurenix.nn.utils.stateless.reparametrize_module``.
    """
    if len(args) == 1 and isinstance(args[0], tuple):
        args = args[0]
    with _reparametrized(module, params, tie_weights, strict, "functional_call"):
        return module(*args, **kwargs)


def batched_call(module: Module, params: Mapping, *args: Tensor) -> Tensor:
    """Run ``module`` once for a batch of T tasks: each of ``args`` is (T, rows, ...), the result (T, rows, ...).

    A tensor in ``params`` with one more dimension than the parameter it stands for holds one value per
    task (MAML's adapted weights); one with the parameter's own shape is shared by all tasks. Rows of
    different tasks never mix: BatchNorm takes statistics per task (see ``neurenix.nn.task_axis``). The
    result equals stacking ``functional_call`` over the tasks, in one call.
    """
    if not args or any(not isinstance(a, Tensor) or a.ndim < 2 for a in args):
        raise ShapeError(f"batched_call: inputs must be tensors of shape (tasks, rows, ...), got "
                         f"{[getattr(a, 'shape', type(a).__name__) for a in args]}")
    t = args[0].shape[0]
    if any(a.shape[:2] != args[0].shape[:2] for a in args):
        raise ShapeError(f"batched_call: inputs disagree on (tasks, rows): {[a.shape for a in args]}")
    rows, stacked = args[0].shape[1], stacks_tasks(module)
    with task_batch(t, stacked):
        out = functional_call(module, params, *(args if stacked else (a.flatten(0, 1) for a in args)))
    if not isinstance(out, Tensor) or out.ndim < (2 if stacked else 1) or \
            out.shape[:2 if stacked else 1] != ((t, rows) if stacked else (t * rows,)):
        raise ShapeError(f"batched_call: {type(module).__name__} must return one row per input row "
                         f"({t} tasks x {rows} rows), got {getattr(out, 'shape', type(out).__name__)}")
    return out if stacked else out.reshape(t, rows, *out.shape[1:])
