"""Utilities, as PyTorch's ``torch.utils``: ``checkpoint`` (recompute a function in the backward pass instead
of storing its graph) and ``data`` (datasets and a DataLoader)."""

from . import checkpoint, data

__all__ = ["checkpoint", "data"]
