"""Shared by the tests of batching over a task axis (nn/test_task_axis.py, models/test_backbones.py): per-task
parameters, and the reference a batched call is held to, each task run alone."""

import neurenix as nx
from neurenix.func import functional_call


def task_params(model, tasks: int | None) -> dict:
    """``model``'s parameters, detached; with ``tasks``, ``tasks`` distinct copies of each stacked on a leading axis,
    as after MAML's inner step."""
    params = {n: p.detach() for n, p in model.named_parameters()}
    if tasks:
        params = {n: p.unsqueeze(0) + 0.1 * nx.randn(tasks, *p.shape, dtype=p.dtype) for n, p in params.items()}
    return params


def looped(model, params: dict, *args, per_task: bool):
    """``functional_call`` task by task (dim 0 of every argument, and of the parameters when ``per_task``),
    stacked."""
    tasks = args[0].shape[0]
    return nx.stack([functional_call(model, {n: v[t] if per_task else v for n, v in params.items()},
                                     *(a[t] for a in args)) for t in range(tasks)])
