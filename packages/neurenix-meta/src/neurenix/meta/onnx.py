"""ONNX export of few-shot classifiers (needs ``pip install 'neurenix-core[onnx]'``).

``adapt_to_task`` of a metric learner returns a ``FewShotClassifier``, bound to one task's support set;
``neurenix.onnx.export`` writes it as the embedding's graph followed by the learner's head, whatever the task
contributes baked in as constants: the class prototypes of Prototypical Networks, the ridge-regression
weights of R2-D2. The graph maps queries (rows, ...) to logits (rows, classes). The classifier reaches this
rule through its ``__onnx_export__`` hook: neurenix-core never imports neurenix.meta.
"""

from __future__ import annotations

import os
from typing import IO, TYPE_CHECKING

from neurenix import Tensor
from neurenix.onnx import Graph, UnsupportedModuleError, Value, export

from .metric import FewShotClassifier, MetricLearner
from .protonets import PrototypicalNetworks, _unit
from .r2d2 import R2D2

if TYPE_CHECKING:
    import onnx


def export_classifier(learner: MetricLearner, support_x: Tensor, support_y: Tensor, example_query: Tensor,
                      path: str | os.PathLike | IO[bytes], **options) -> onnx.ModelProto:
    """Export the classifier ``learner.adapt_to_task(support_x, support_y)`` for queries like ``example_query``;
    ``options`` are ``neurenix.onnx.export``'s (``dynamic_axes``, ``opset_version``...). The learner adapts in
    eval mode, so that the support set is embedded as the queries are (BatchNorm with its running statistics,
    which a training-mode embedding of the support set would move); its modes are put back after."""
    modes = [(m, m.training) for m in learner.modules()]
    learner.eval()
    try:
        classifier = learner.adapt_to_task(support_x, support_y).eval()
        return export(classifier, example_query, path, **options)
    finally:
        for m, training in modes:
            m.training = training


def few_shot_classifier(g: Graph, m: FewShotClassifier, x: Value, path: str) -> Value:
    """The rule of a FewShotClassifier: the embedding's graph, then the head with the support set baked in."""
    head = _head(type(m.learner))
    if head is None:
        raise UnsupportedModuleError(
            f"neurenix.onnx.export: {f'module {path!r}' if path else 'the model'} is a FewShotClassifier of "
            f"{type(m.learner).__name__}, whose head has no ONNX export rule (supported: "
            f"{', '.join(c.__name__ for c in _HEADS)})")
    prefix = f"{path}.learner" if path else "learner"
    e = g.module(m.learner.embedding_model, x, f"{prefix}.model")
    flat = g.node("Flatten", [e.name], f"{prefix}.features", axis=1) if e.ndim > 2 else e.name  # as features()
    return Value(head(g, m, flat, prefix), m(x.example))


def _head(cls: type):
    """The head rule of learner class ``cls``: a subclass has its base's head where it keeps the methods that
    compute the logits."""
    for base, (rule, methods) in _HEADS.items():
        if issubclass(cls, base) and all(getattr(cls, n) is getattr(base, n) for n in methods):
            return rule
    return None


def _prototypes(g: Graph, m: FewShotClassifier, q: str, prefix: str) -> str:
    """Negative distances to the prototypes, as ``PrototypicalNetworks.compute_distances``."""
    learner: PrototypicalNetworks = m.learner
    protos = learner.prototypes(m.support, m.one_hot)[0]  # (classes, features)
    if learner.distance_metric == "euclidean":
        p = g.tensor(protos, f"{prefix}.prototypes")
        d = g.node("Sub", [g.node("Unsqueeze", [q, g.ints([1], f"{prefix}.axis")], f"{prefix}.query"), p],
                   f"{prefix}.differences")
        squared = g.reduce("ReduceSum", g.node("Mul", [d, d], f"{prefix}.squares"), [-1], f"{prefix}.distances",
                           keepdims=False)
        return g.node("Neg", [squared], f"{prefix}.logits")
    p = g.tensor(_unit(protos).mT, f"{prefix}.unit_prototypes_t")  # (features, classes)
    norm = g.node("Sqrt", [g.reduce("ReduceSum", g.node("Mul", [q, q], f"{prefix}.squares"), [-1],
                                    f"{prefix}.sum_squares")], f"{prefix}.norm")
    clamped = g.node("Max", [norm, g.scalar(1e-12, f"{prefix}.least_norm")], f"{prefix}.clamped_norm")
    cos = g.node("MatMul", [g.node("Div", [q, clamped], f"{prefix}.unit_query"), p], f"{prefix}.cosine")
    distance = g.node("Sub", [g.scalar(1.0, f"{prefix}.one"), cos], f"{prefix}.distances")
    return g.node("Neg", [distance], f"{prefix}.logits")


def _ridge(g: Graph, m: FewShotClassifier, q: str, prefix: str) -> str:
    """``alpha * (q @ W) + beta``, W the task's ridge-regression weights, as ``R2D2.scores``."""
    learner: R2D2 = m.learner
    w = g.tensor(learner.ridge_weights(m.support, m.one_hot)[0], f"{prefix}.ridge_weights")
    scaled = g.node("Mul", [g.tensor(learner.alpha, f"{prefix}.alpha"), g.node("MatMul", [q, w], f"{prefix}.ridge")],
                    f"{prefix}.scaled")
    return g.node("Add", [scaled, g.tensor(learner.beta, f"{prefix}.beta")], f"{prefix}.logits")


_HEADS = {PrototypicalNetworks: (_prototypes, ("scores", "prototypes", "compute_distances")),
          R2D2: (_ridge, ("scores", "ridge_weights"))}
