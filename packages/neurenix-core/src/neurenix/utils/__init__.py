"""Utilities, as PyTorch's ``torch.utils``: ``checkpoint`` (recompute a function in the backward pass instead
of storing its graph)."""

from . import checkpoint

__all__ = ["checkpoint"]
