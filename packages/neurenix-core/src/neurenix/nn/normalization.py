"""Per-row normalisation: LayerNorm and GroupNorm (PyTorch's ``torch.nn.modules.normalization``)."""

from __future__ import annotations

from collections.abc import Callable

from .. import creation
from ..arguments import integer, number
from ..errors import ShapeError
from ..ops import expect_tensor as tensor
from ..tensor import Tensor
from . import functional as F
from .module import Module, Parameter
from .task_axis import by_task, has_task_axis, task_count


class LayerNorm(Module):
    """Normalises over the last ``len(normalized_shape)`` axes, then ``* weight + bias`` (ones and zeros of
    ``normalized_shape``) where ``elementwise_affine``; ``bias=False`` leaves out the bias."""

    stacks_tasks = True  # row-wise: (tasks, rows, ...) inputs as they are

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        self.normalized_shape = F._normalized_shape(normalized_shape, "LayerNorm")
        self.eps = number(eps, "eps", "LayerNorm", above=0.0)
        self.elementwise_affine = elementwise_affine
        _affine_parameters(self, self.normalized_shape, elementwise_affine, elementwise_affine and bias, device, dtype)

    def forward(self, x: Tensor) -> Tensor:
        w, b, ns = self.weight, self.bias, self.normalized_shape
        if _per_task(w, b, len(ns), "LayerNorm"):
            return _task_affine(F.layer_norm(x, ns, None, None, self.eps), w, b, len(ns), lambda s: s, "LayerNorm")
        return F.layer_norm(x, ns, w, b, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """Normalises an (N, C, ...) input over each of ``num_groups`` groups of channels per row, then ``* weight +
    bias`` per channel (ones and zeros of (C,)) where ``affine``."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, device=None,
                 dtype=None):
        super().__init__()
        num_groups = integer(num_groups, "num_groups", "GroupNorm", minimum=1)
        num_channels = integer(num_channels, "num_channels", "GroupNorm", minimum=1)
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_groups ({num_groups}) must divide num_channels ({num_channels})")
        self.num_groups, self.num_channels = num_groups, num_channels
        self.eps, self.affine = number(eps, "eps", "GroupNorm", above=0.0), affine
        _affine_parameters(self, (num_channels,), affine, affine, device, dtype)

    def forward(self, x: Tensor) -> Tensor:
        tensor(x, "input", "GroupNorm")
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ShapeError(f"GroupNorm({self.num_groups}, {self.num_channels}): expected an input (N, "
                             f"{self.num_channels}, ...), got shape {x.shape}")
        w, b = self.weight, self.bias
        if _per_task(w, b, 1, "GroupNorm"):
            y = F.group_norm(x, self.num_groups, None, None, self.eps)
            return _task_affine(y, w, b, 1, lambda s: s + (1,) * (x.ndim - 2), "GroupNorm")
        return F.group_norm(x, self.num_groups, w, b, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


def _affine_parameters(module: Module, shape: tuple, weight: bool, bias: bool, device, dtype) -> None:
    """Register ``weight`` (ones) and ``bias`` (zeros) of ``shape``, or None for those left out."""
    module.register_parameter("weight", Parameter(creation.ones(shape, dtype=dtype, device=device)) if weight else None)
    module.register_parameter("bias", Parameter(creation.zeros(shape, dtype=dtype, device=device)) if bias else None)


def _per_task(weight: Tensor | None, bias: Tensor | None, ndim: int, layer: str) -> bool:
    """Whether the affine parameters (of ``ndim`` dimensions each) carry a task axis, inside ``task_batch``."""
    return bool(task_count()) and any(p is not None and has_task_axis(p, ndim, layer) for p in (weight, bias))


def _task_affine(y: Tensor, weight: Tensor | None, bias: Tensor | None, ndim: int,
                 layout: Callable[[tuple], tuple], layer: str) -> Tensor:
    """``y * weight + bias`` inside ``task_batch``, a parameter with a task axis applied to its own task's rows.
    ``layout`` gives the shape a parameter (of ``ndim`` dimensions) takes to broadcast against one task's rows."""
    n = task_count()
    ys = by_task(y, n, layer)  # (tasks, rows, ...)
    for p, scale in ((weight, True), (bias, False)):
        if p is None:
            continue
        if has_task_axis(p, ndim, layer):
            shape = layout(tuple(p.shape[1:]))
            p = p.reshape((n,) + (1,) * (ys.ndim - 1 - len(shape)) + shape)
        else:
            p = p.reshape(layout(tuple(p.shape)))
        ys = ys * p if scale else ys + p
    return ys.reshape(y.shape)
