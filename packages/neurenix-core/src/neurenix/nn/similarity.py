"""Normalising vectors and comparing them: ``normalize``, ``cosine_similarity``, ``pairwise_distance``."""

from __future__ import annotations

from ..arguments import number
from ..ops import expect_tensor as _tensor
from ..ops import sum as _sum
from ..ops.norms import norm
from ..tensor import Tensor


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """``input / max(||input||_p, eps)`` along ``dim``."""
    _tensor(input, "input", "normalize")
    eps = number(eps, "eps", "normalize", minimum=0.0)
    return input / norm(input, p, dim, keepdim=True).clamp(min=eps)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """``x1 . x2 / max(||x1|| ||x2||, eps)`` along ``dim`` (the operands broadcast)."""
    _tensor(x1, "x1", "cosine_similarity")
    _tensor(x2, "x2", "cosine_similarity")
    eps = number(eps, "eps", "cosine_similarity", minimum=0.0)
    return _sum(x1 * x2, dim) / (norm(x1, 2, dim) * norm(x2, 2, dim)).clamp(min=eps)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    """``||x1 - x2 + eps||_p`` over the last axis (the operands broadcast)."""
    _tensor(x1, "x1", "pairwise_distance")
    _tensor(x2, "x2", "pairwise_distance")
    eps = number(eps, "eps", "pairwise_distance", finite=True)
    return norm(x1 - x2 + eps, p, -1, keepdim)
