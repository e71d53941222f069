"""Helpers shared by the distributions (PyTorch's ``torch.distributions.utils``)."""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..nn import functional as F
from ..ops.shape import expand
from ..tensor import Tensor, tensor


def broadcast_all(*values) -> tuple:
    """Tensors and numbers as tensors of one broadcast shape; numbers take the first tensor's dtype and device
    (the default float dtype if there is none)."""
    ref = next((v for v in values if isinstance(v, Tensor)), None)
    out = []
    for v in values:
        if isinstance(v, Tensor):
            out.append(v)
        elif ref is not None:
            out.append(tensor(v, dtype=ref.dtype if ref.is_floating_point() else dtypes.default_float,
                              device=ref.device))
        else:
            out.append(tensor(float(v), dtype=dtypes.default_float))
    shape = tuple(np.broadcast_shapes(*(v.shape for v in out)))
    return tuple(v if v.shape == shape else expand(v, shape) for v in out)


def clamp_probs(probs: Tensor) -> Tensor:
    """Probabilities kept within ``[eps, 1 - eps]`` (eps of their dtype), so that their logarithms are finite."""
    eps = float(np.finfo(probs.dtype.np).eps)
    return probs.clamp(eps, 1 - eps)


def probs_to_logits(probs: Tensor, is_binary: bool = False) -> Tensor:
    """Log-probabilities (or, ``is_binary``, log-odds) from probabilities."""
    p = clamp_probs(probs)
    return p.log() - (1 - p).log() if is_binary else p.log()


def logits_to_probs(logits: Tensor, is_binary: bool = False) -> Tensor:
    """Probabilities from logits: a softmax over the last dimension (a sigmoid when ``is_binary``)."""
    return logits.sigmoid() if is_binary else logits.softmax(-1)


def softplus(x: Tensor) -> Tensor:
    """``log(1 + exp(x))`` without overflow, its gradient ``sigmoid(x)`` everywhere: ``nn.functional.softplus``."""
    return F.softplus(x)


__all__ = ["broadcast_all", "clamp_probs", "logits_to_probs", "probs_to_logits", "softplus"]
