"""Automatic differentiation: a dynamic graph with gradients of any order.

``grad(outputs, inputs, ...)`` returns gradients; ``Tensor.backward()`` accumulates them into
``.grad``; ``no_grad()`` / ``enable_grad()`` switch recording per thread; ``checkpoint(fn, *inputs)`` recomputes
``fn`` in the backward pass instead of storing its graph.
"""

from .checkpoint import checkpoint
from .engine import backward, grad
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .graph import Node

__all__ = ["Node", "backward", "checkpoint", "enable_grad", "grad", "is_grad_enabled", "no_grad", "set_grad_enabled"]
