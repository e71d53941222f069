"""learn2learn's ``l2l.algorithms`` namespace: with ``import neurenix.meta as l2l``, ``l2l.algorithms.MAML(model,
lr=...)`` and ``l2l.algorithms.MetaSGD(model, lr=...)`` are neurenix.meta's learners, in their learn2learn
spelling (see docs/learn2learn.md)."""

from .maml import MAML
from .metasgd import MetaSGD

__all__ = ["MAML", "MetaSGD"]
