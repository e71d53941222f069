"""Optimizers: SGD, Adam, AdamW (PyTorch's update rules and API)."""

from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer"]
