"""Metric-based few-shot learners: classify a query by comparing its embedding with the support set's.

Prototypical and Relation Networks differ only in how they score a query against the support set;
embedding, batching tasks, checking labels and the classifier that ``adapt_to_task`` returns are shared.
"""

from __future__ import annotations

from collections.abc import Sequence

import neurenix as nx
from neurenix import Tensor
from neurenix.func import batched_call
from neurenix.nn import Module
from neurenix.nn import functional as F

from . import checks
from .base import MetaLearningModel
from .losses import LossFn, task_losses
from .tasks import Batch, Checked, check_task, stack


def features(e: Tensor) -> Tensor:
    """Embeddings (tasks, rows, ...) as (tasks, rows, features): feature maps flattened."""
    return e.flatten(2) if e.ndim > 3 else e


class MetricLearner(MetaLearningModel):
    """Base of the metric learners: ``scores`` turns query and support embeddings into class logits."""

    _model_argument = "embedding_model"

    def __init__(self, embedding_model: Module, meta_lr: float = 0.001):
        super().__init__(embedding_model, inner_lr=0.0, meta_lr=meta_lr)

    @property
    def embedding_model(self) -> Module:
        return self.model

    def scores(self, query: Tensor, support: Tensor, one_hot: Tensor) -> Tensor:
        """Class logits (tasks, queries, classes) from embeddings (tasks, rows, ...) and one-hot support
        labels (tasks, support rows, classes)."""
        raise NotImplementedError

    def check(self, tasks: Sequence) -> list[Checked]:
        checked = super().check(tasks)
        for t in checked:
            _check_classes(t, type(self).__name__)
        return checked

    def embed(self, x: Tensor) -> Tensor:
        """Embeddings of (tasks, rows, ...) inputs, one call for all tasks (BatchNorm statistics per task)."""
        return batched_call(self.model, {}, x)

    def task_objective(self, batch: Batch, loss_fn: LossFn | None) -> tuple[Tensor, Tensor]:
        s = batch.support_x.shape[1]
        emb = self.embed(nx.cat([batch.support_x, batch.query_x], dim=1))
        one_hot = F.one_hot(batch.support_labels, batch.classes).to(emb.dtype)
        logits = self.scores(emb[:, s:], emb[:, :s], one_hot)
        return task_losses(logits, batch.query_y, batch.query_labels, loss_fn, batch.classes, batch.indices), logits

    def _support(self, support_x: Tensor, support_y: Tensor) -> tuple[Tensor, Tensor]:
        """One task's support set as a batch of one: (embeddings, one-hot labels), each (1, rows, ...)."""
        task = check_task((support_x, support_y, support_x, support_y), 0, ("support_x", "support_y"))
        _check_classes(task, type(self).__name__)
        b = stack([task])
        emb = self.embed(b.support_x)
        return emb, F.one_hot(b.support_labels, b.classes).to(emb.dtype)

    def forward(self, x: Tensor, support_x: Tensor | None = None, support_y: Tensor | None = None) -> Tensor:
        """Embeddings of ``x``; with a support set, the class logits of ``x`` (rows, classes) for that task."""
        if support_x is None and support_y is None:
            return self.model(x)
        if support_x is None or support_y is None:
            raise ValueError(f"{type(self).__name__}: give both support_x and support_y, or neither")
        support, one_hot = self._support(support_x, support_y)
        return self.scores(self.embed(x.unsqueeze(0)), support, one_hot)[0]

    def adapt_to_task(self, support_x: Tensor, support_y: Tensor, steps: int | None = None,
                      loss_fn: LossFn | None = None, compile: bool = True) -> Module:
        """A classifier for this task: ``classifier(query_x)`` gives class logits (rows, classes). It embeds
        the support set once, now (no gradient steps: ``steps`` and ``compile`` are accepted for a uniform
        API)."""
        checks.flag("compile", compile)
        if steps is not None:
            checks.count("steps", steps, 0)
        checks.function("loss_fn", loss_fn)
        with nx.no_grad():
            support, one_hot = self._support(support_x, support_y)
        return FewShotClassifier(self, support.detach(), one_hot)


def _check_classes(task: Checked, learner: str) -> None:
    if task.support_labels is None:
        raise ValueError(f"{learner}: task {task.index} has targets of shape {tuple(task.support_y.shape)} "
                         f"({task.support_y.dtype}), not class labels (int64 indices or one-hot rows)")
    empty = [c for c, n in enumerate(task.support_counts) if n == 0]
    if empty:
        raise ValueError(f"{learner}: task {task.index} has no support examples of class {empty[0]} (support_y "
                         f"{tuple(task.support_y.shape)}, {task.classes} classes); every class needs at least one")


class FewShotClassifier(Module):
    """A metric learner bound to one task's support set: maps inputs (rows, ...) to logits (rows, classes)."""

    def __init__(self, learner: MetricLearner, support: Tensor, one_hot: Tensor):
        super().__init__()
        self.learner = learner
        self.register_buffer("support", support)
        self.register_buffer("one_hot", one_hot)

    def forward(self, x: Tensor) -> Tensor:
        return self.learner.scores(self.learner.embed(x.unsqueeze(0)), self.support, self.one_hot)[0]

    def __onnx_export__(self, graph, x, path: str):
        """neurenix.onnx.export's hook: the rule lives in neurenix.meta.onnx, imported here because it needs the
        optional onnx package (and core cannot import meta to find it)."""
        from .onnx import few_shot_classifier
        return few_shot_classifier(graph, self, x, path)
