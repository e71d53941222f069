"""Fully connected layers and shape helpers: Linear, Identity, Flatten."""

from __future__ import annotations

import math

from .. import creation
from ..arguments import integer
from ..ops import expect_tensor as tensor
from ..ops import flatten, linear
from ..tensor import Tensor
from . import init
from .module import Module, Parameter
from .task_axis import by_task, has_task_axis, task_count


class Linear(Module):
    """``y = x @ weight.T + bias`` with ``weight`` of shape (out_features, in_features).

    Initialised as PyTorch does: weight and bias uniform in ``±1/sqrt(in_features)``.
    """

    stacks_tasks = True

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        in_features = integer(in_features, "in_features", "Linear", minimum=0)
        out_features = integer(out_features, "out_features", "Linear", minimum=0)
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(creation.empty(out_features, in_features, dtype=dtype, device=device))
        self.bias = Parameter(creation.empty(out_features, dtype=dtype, device=device)) if bias else None
        if not bias:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # = U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return task_linear(x, self.weight, self.bias, "Linear")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def task_linear(x: Tensor, weight: Tensor, bias: Tensor | None, layer: str) -> Tensor:
    """``F.linear(x, weight, bias)``; inside ``task_batch`` a weight (tasks, out, in) maps each task's rows with
    its own weights (see nn.task_axis). Linear and MultiheadAttention's projections run through here."""
    if not task_count() or not has_task_axis(weight, 2, layer):  # outside task_batch: F.linear's batching
        return linear(x, weight, bias)
    # (tasks, rows, in) as it is where stacked: then flatten(1, -2) is no reshape at all
    y = linear(by_task(x, weight.shape[0], layer).flatten(1, -2), weight, bias)  # (tasks, rows, out)
    return y.reshape(*x.shape[:-1], weight.shape[-2])


class Identity(Module):
    """Returns its input."""

    stacks_tasks = True

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return x


class Flatten(Module):
    """Flattens axes ``start_dim..end_dim`` (by default all but the batch axis)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return flatten(tensor(x, "input", "Flatten"), self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
