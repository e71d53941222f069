"""Activation layers."""

from __future__ import annotations

from ..arguments import number
from ..ops import relu, sigmoid, tanh
from ..tensor import Tensor
from . import functional as F
from .module import Module


class ReLU(Module):
    """``max(x, 0)``."""
    stacks_tasks = True

    def __init__(self, inplace: bool = False):  # inplace is accepted for PyTorch compatibility; values never alias
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return relu(x)


class Sigmoid(Module):
    """``1 / (1 + exp(-x))``."""
    stacks_tasks = True

    def forward(self, x: Tensor) -> Tensor:
        return sigmoid(x)


class Tanh(Module):
    """``tanh(x)``."""
    stacks_tasks = True

    def forward(self, x: Tensor) -> Tensor:
        return tanh(x)


class Softmax(Module):
    """Softmax along ``dim``. ``dim=None`` (the default, as PyTorch's) is PyTorch's deprecated implicit choice
    where it is the last axis (inputs up to 2-D, with PyTorch's warning) and a ValueError beyond (see
    ``F.softmax``): pass ``dim``."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """Log-softmax along ``dim``."""

    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(x, self.dim)


class LeakyReLU(Module):
    """``x`` where positive, else ``negative_slope * x``."""
    stacks_tasks = True

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):  # values never alias: inplace is moot
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class GELU(Module):
    """``x * Phi(x)``, exact (erf) or with ``approximate='tanh'``."""
    stacks_tasks = True

    def __init__(self, approximate: str = "none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """``x * sigmoid(x)``."""
    stacks_tasks = True

    def __init__(self, inplace: bool = False):  # values never alias: inplace is moot
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(x)


class ELU(Module):
    """``x`` where positive, else ``alpha * (exp(x) - 1)``."""
    stacks_tasks = True

    def __init__(self, alpha: float = 1.0, inplace: bool = False):  # values never alias: inplace is moot
        super().__init__()
        self.alpha = number(alpha, "alpha", "ELU")

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Softplus(Module):
    """``log(1 + exp(beta * x)) / beta``, and ``x`` where ``beta * x > threshold``."""
    stacks_tasks = True

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta = number(beta, "beta", "Softplus")
        self.threshold = number(threshold, "threshold", "Softplus")

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"
