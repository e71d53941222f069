"""Relation Networks (Sung et al., 2018), in the form of the guide's seed 004: a learned relation module
g scores each (query, support example) pair, and a class's probability is its share of the scores."""

from __future__ import annotations

import neurenix as nx
from neurenix import Tensor
from neurenix.errors import ShapeError
from neurenix.func import batched_call
from neurenix.nn import Module

from . import checks
from .metric import MetricLearner


class RelationNetworks(MetricLearner):
    """``r(x_q, x_i) = sigmoid(g([f(x_q), f(x_i)]))`` for an embedding module f and a relation module g,
    with the pair concatenated on the feature (channel) axis; then
    ``P(y_q = c) = sum_{i: y_i = c} r(x_q, x_i) / sum_i r(x_q, x_i)``. Logits are ``log P``, so the
    default loss (cross-entropy) is the negative log-likelihood of the true class.

    ``relation_model`` maps pairs (rows, 2 * features, ...) to one score per row, (rows, 1) or (rows,).
    """

    def __init__(self, embedding_model: Module, relation_model: Module, meta_lr: float = 0.001):
        super().__init__(embedding_model, meta_lr)
        self.relation_model = checks.module("relation_model", relation_model)

    def compute_relations(self, query_embeddings: Tensor, support_embeddings: Tensor) -> Tensor:
        """Relation scores in (0, 1), shape (tasks, queries, support rows), from embeddings (tasks, rows, ...)."""
        return self.relation_logits(query_embeddings, support_embeddings).sigmoid()

    def relation_logits(self, query_embeddings: Tensor, support_embeddings: Tensor) -> Tensor:
        """The relation module's raw scores g (before the sigmoid), shape (tasks, queries, support rows)."""
        q, s = query_embeddings, support_embeddings
        if not (isinstance(q, Tensor) and isinstance(s, Tensor)) or q.ndim < 3 or s.ndim != q.ndim or \
                q.shape[0] != s.shape[0] or q.shape[2:] != s.shape[2:]:
            shapes = [tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__ for x in (q, s)]
            raise ShapeError(f"RelationNetworks: query_embeddings {shapes[0]} and support_embeddings {shapes[1]} "
                             "must be (tasks, rows, features...) with the same tasks and features")
        t, nq, ns, feat = q.shape[0], q.shape[1], s.shape[1], q.shape[2:]
        qe = q.unsqueeze(2).expand(t, nq, ns, *feat)
        se = s.unsqueeze(1).expand(t, nq, ns, *feat)
        pairs = nx.cat([qe, se], dim=3).reshape(t, nq * ns, 2 * feat[0], *feat[1:])
        r = batched_call(self.relation_model, {}, pairs)
        if r.numel() != t * nq * ns:
            raise ValueError(f"RelationNetworks: relation_model must give one score per pair, got shape "
                             f"{tuple(r.shape[1:])} per pair batch of {nq * ns}")
        return r.reshape(t, nq, ns)

    def scores(self, query: Tensor, support: Tensor, one_hot: Tensor) -> Tensor:
        # log P = log sum_{i in c} r_i - log sum_i r_i, in log space: a sigmoid that underflows to 0 in
        # float32 would otherwise give log(0) and NaN gradients (seen after ~50 meta-iterations on digits)
        z = self.relation_logits(query, support)
        log_r = -nx.nn.functional.softplus(-z)  # log sigmoid(z), stable for any z, its slope 1/2 at 0 too
        outside = (one_hot.unsqueeze(1) - 1) * 1e30  # 0 for the class's own support rows, -1e30 elsewhere
        return (log_r.unsqueeze(-1) + outside).logsumexp(dim=-2) - log_r.logsumexp(dim=-1, keepdim=True)
