"""Dropout."""

from __future__ import annotations

from ..arguments import number
from ..tensor import Tensor
from . import functional as F
from .module import Module


class Dropout(Module):
    """In training, zero each element with probability ``p`` and scale the rest by ``1/(1-p)``."""

    stacks_tasks = True

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = number(p, "p (a probability)", "Dropout", minimum=0.0, maximum=1.0)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
