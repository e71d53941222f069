"""Batch normalisation."""

from __future__ import annotations

from .. import creation
from .. import dtypes as _dt
from ..arguments import integer, number
from ..errors import ShapeError
from ..ops import expect_tensor as tensor
from ..tensor import Tensor
from . import functional as F
from .module import Module, Parameter
from .task_axis import has_task_axis, task_count


class _BatchNorm(Module):
    _input_dims: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        num_features = integer(num_features, "num_features", name, minimum=1)
        eps = number(eps, "eps", name, above=0.0)
        if momentum is not None:  # None: a cumulative average over the batches seen, as in PyTorch
            momentum = number(momentum, "momentum", name, minimum=0.0, maximum=1.0)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(creation.ones(num_features, dtype=dtype, device=device))
            self.bias = Parameter(creation.zeros(num_features, dtype=dtype, device=device))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", creation.zeros(num_features, dtype=dtype, device=device))
            self.register_buffer("running_var", creation.ones(num_features, dtype=dtype, device=device))
            self.register_buffer("num_batches_tracked", creation.zeros((), dtype=_dt.int64, device=device))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def forward(self, x: Tensor) -> Tensor:
        return F.batch_norm(x, *self._arguments(x))

    def _arguments(self, x: Tensor) -> tuple:
        """F.batch_norm's arguments after x, once x is checked; counts the batch where running statistics are
        tracked."""
        tensor(x, "input", type(self).__name__)
        if x.ndim not in self._input_dims or x.shape[1] != self.num_features:
            raise ShapeError(f"{type(self).__name__}({self.num_features}): expected input of {self._input_dims} "
                             f"dimensions with {self.num_features} channels on axis 1, got shape {x.shape}")
        if self.affine:
            has_task_axis(self.weight, 1, type(self).__name__)  # checks a task axis against the task count
        use_batch_stats = self.training or not self.track_running_stats
        momentum = self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if momentum is None:
                momentum = 1.0 / self.num_batches_tracked.item()
        return (self.running_mean if self.track_running_stats else None,
                self.running_var if self.track_running_stats else None, self.weight, self.bias,
                use_batch_stats, momentum if momentum is not None else 0.0, self.eps, task_count())

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over (N, C) or (N, C, L) inputs."""

    _input_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over (N, C, H, W) inputs."""

    _input_dims = (4,)

    def _forward_relu_pool(self, x: Tensor) -> Tensor | None:
        """``max_pool2d(relu(self(x)), 2)`` as one op where this layer takes batch statistics (see
        ``F._batch_norm_relu_pool``); None with running statistics, before anything changed."""
        if not self.training and self.track_running_stats:
            return None
        running_mean, running_var, weight, bias, _, momentum, eps, tasks = self._arguments(x)
        return F._batch_norm_relu_pool(x, running_mean, running_var, weight, bias, momentum, eps, tasks)
