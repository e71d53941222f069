"""Dropout: of elements, and of whole channels."""

from __future__ import annotations

from ..arguments import number
from ..tensor import Tensor
from . import functional as F
from .module import Module


class Dropout(Module):
    """In training, zero each element with probability ``p`` and scale the rest by ``1/(1-p)``."""

    stacks_tasks = True

    def __init__(self, p: float = 0.5, inplace: bool = False):  # values never alias: inplace is moot
        super().__init__()
        self.p = number(p, "p (a probability)", type(self).__name__, minimum=0.0, maximum=1.0)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Dropout2d(Dropout):
    """In training, zero each channel of an (N, C, H, W) input with probability ``p`` and scale the rest by
    ``1/(1-p)``. A 3-D input raises (see ``F.dropout2d``)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout2d(x, self.p, self.training)
