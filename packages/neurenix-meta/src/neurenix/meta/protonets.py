"""Prototypical Networks (Snell et al., 2017): a class is the mean of its support embeddings."""

from __future__ import annotations

from neurenix import Tensor
from neurenix.errors import ShapeError
from neurenix.nn import Module

from . import checks
from .metric import MetricLearner, features

METRICS = ("euclidean", "cosine")


class PrototypicalNetworks(MetricLearner):
    """Classify a query by its distance to each class prototype, the mean embedding of the class's
    support examples. Logits are negative distances: squared Euclidean, or cosine distance 1 - cos."""

    distance_metric = checks.Validated(checks.choice, METRICS)

    def __init__(self, embedding_model: Module, distance_metric: str = "euclidean", meta_lr: float = 0.001):
        super().__init__(embedding_model, meta_lr)
        self.distance_metric = distance_metric

    def hyperparameters(self) -> dict:
        return super().hyperparameters() | {"distance_metric": self.distance_metric}

    def compute_prototypes(self, support_x: Tensor, support_y: Tensor) -> Tensor:
        """Class prototypes (classes, features) of one task: support inputs are embedded, then averaged
        per class. Labels are int64 class indices or one-hot rows."""
        support, one_hot = self._support(support_x, support_y)
        return self.prototypes(support, one_hot)[0]

    @staticmethod
    def prototypes(support: Tensor, one_hot: Tensor) -> Tensor:
        """Per-class means (tasks, classes, features) of embeddings (tasks, rows, ...)."""
        return (one_hot.mT @ features(support)) / one_hot.sum(-2).unsqueeze(-1)

    def compute_distances(self, query_embeddings: Tensor, prototypes: Tensor) -> Tensor:
        """Distances (..., queries, classes) between embeddings (..., queries, features) and prototypes
        (..., classes, features)."""
        q, p = query_embeddings, prototypes
        for name, t in (("query_embeddings", q), ("prototypes", p)):
            if not isinstance(t, Tensor) or t.ndim < 2:
                raise ShapeError(f"compute_distances: {name} must be a Tensor (..., rows, features), got "
                                 f"{tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__}")
        if q.shape[-1] != p.shape[-1]:
            raise ShapeError(f"compute_distances: query_embeddings {tuple(q.shape)} and prototypes {tuple(p.shape)} "
                             "differ in their number of features")
        if self.distance_metric == "euclidean":
            d = q.unsqueeze(-2) - p.unsqueeze(-3)
            return (d * d).sum(-1)
        return 1 - _unit(q) @ _unit(p).mT

    def scores(self, query: Tensor, support: Tensor, one_hot: Tensor) -> Tensor:
        return -self.compute_distances(features(query), self.prototypes(support, one_hot))


def _unit(x: Tensor) -> Tensor:
    return x / (x * x).sum(-1, keepdim=True).sqrt().clamp(min=1e-12)
