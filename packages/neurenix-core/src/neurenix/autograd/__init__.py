"""Automatic differentiation: a dynamic graph with gradients of any order.

``grad(outputs, inputs, ...)`` returns gradients; ``Tensor.backward()`` accumulates them into ``.grad``;
``no_grad()`` / ``enable_grad()`` switch recording per thread; ``Function`` defines a custom op by its forward
and backward; ``implicit_grad`` differentiates a solution through the condition it satisfies (the implicit
function theorem, for bilevel problems such as iMAML). (Recomputing a function in the backward pass instead
of storing its graph: ``neurenix.utils.checkpoint``.) ``functional`` has PyTorch's ``jacobian``, ``hessian``,
``vjp``, ``jvp``, ``vhp`` and ``hvp``.

This package knows nothing of Tensor: the graph and the engine work on whatever records nodes (tensor.py),
so that dependencies point one way, tensor -> autograd.
"""

from . import functional
from .engine import backward, grad
from .function import Function, FunctionCtx
from .grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .graph import Node
from .implicit import conjugate_gradient, implicit_grad

__all__ = [
    "Function", "FunctionCtx", "Node", "backward", "conjugate_gradient", "enable_grad", "functional", "grad",
    "implicit_grad", "inference_mode", "is_grad_enabled", "no_grad", "set_grad_enabled",
]
