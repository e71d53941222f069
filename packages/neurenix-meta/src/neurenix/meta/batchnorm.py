"""BatchNorm in meta-learning: each task is normalised by its own batch statistics, and running
statistics never carry one task's data into another (the default, ``"transductive"``); or, chosen per
learner (``MAML(..., batch_norm=...)``), running statistics accumulated in meta-training and used at test
time (``"inductive"``, one set; ``"per_step"``, one set per inner step, as MAML++).

- ``task_call``: the meta-learners' forward pass over a batch of tasks. Every BatchNorm layer uses the
  batch statistics of each task's rows (per task, see ``neurenix.nn.task_axis``), in the inner loop and on
  the query set, whatever the model's train/eval mode, and its running statistics are neither read nor
  written. This is the MAML paper's setting, and it makes the forward pass a pure function of the
  weights and the data, which second-order gradients and checkpointing need.
- ``support_statistics``: after ``adapt_to_task``, the adapted copy's running statistics are those of
  its own support set (nothing else), so that ``adapted.eval()`` normalises new inputs with them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import neurenix as nx
from neurenix import Tensor
from neurenix.func import batched_call
from neurenix.nn import BatchNorm1d, BatchNorm2d, Module


def norm_layers(model: Module) -> list[Module]:
    """The BatchNorm layers of ``model``."""
    return [m for m in model.modules() if isinstance(m, (BatchNorm1d, BatchNorm2d))]


@contextmanager
def batch_statistics(model: Module) -> Iterator[None]:
    """Within this block, ``model``'s BatchNorm layers normalise with batch statistics and leave their
    running statistics alone (``track_running_stats`` is switched off for the block)."""
    layers = [m for m in norm_layers(model) if m.track_running_stats]
    for m in layers:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in layers:
            m.track_running_stats = True


MODES = ("transductive", "inductive", "per_step")

#: How a forward pass's BatchNorm layers normalise when not by per-task batch statistics alone: the running
#: statistics (mean, var) to use for each layer (by the layer's id), and whether the pass moves them towards
#: its batch statistics (meta-training) or normalises with them (adaptation at test time)
Plan = tuple[dict[int, tuple[Tensor, Tensor]], bool]


@contextmanager
def running_statistics(model: Module, plan: Plan) -> Iterator[None]:
    """Within this block, each BatchNorm layer of ``model`` named in ``plan`` normalises with the plan's
    running statistics, or (tracking) with batch statistics while moving the plan's towards them by the
    layer's momentum; the layers' own buffers and modes are put back after."""
    stats, track = plan
    layers = [m for m in norm_layers(model) if id(m) in stats]
    saved = [(m, m.running_mean, m.running_var, m.training, m.track_running_stats) for m in layers]
    for m in layers:
        m.running_mean, m.running_var = stats[id(m)]
        m.training, m.track_running_stats = track, True
    try:
        yield
    finally:
        for m, mean, var, training, tracking in saved:
            m.running_mean, m.running_var, m.training, m.track_running_stats = mean, var, training, tracking


def task_call(model: Module, params: Mapping[str, Tensor], x: Tensor, plan: Plan | None = None) -> Tensor:
    """``batched_call(model, params, x)`` with each task normalised by its own batch statistics (``plan`` None:
    the transductive default), or as ``plan`` says (see ``running_statistics``)."""
    with batch_statistics(model) if plan is None else running_statistics(model, plan):
        return batched_call(model, params, x)


def support_statistics(model: Module, support_x: Tensor) -> None:
    """Set the running statistics of ``model``'s BatchNorm layers to those of ``support_x`` alone (one
    forward pass at the current weights, without recording), discarding whatever they held."""
    layers = [m for m in norm_layers(model) if m.track_running_stats]
    if not layers:
        return
    saved = [(m, m.momentum, m.training) for m in layers]
    for m in layers:
        m.momentum, m.training = 1.0, True  # running <- this batch's statistics
    try:
        with nx.no_grad():
            model(support_x)
    finally:
        for m, momentum, training in saved:
            m.momentum, m.training = momentum, training
            m.num_batches_tracked.fill_(1)
