"""Pooling layers."""

from __future__ import annotations

from ..tensor import Tensor
from . import functional as F
from .module import Module


class MaxPool2d(Module):
    """Max over ``kernel_size`` windows, moving by ``stride`` (default: the kernel size)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False):
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation
        self.ceil_mode = ceil_mode

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)

    def _halves(self) -> bool:
        """Whether this is a 2x2 window of stride 2 without padding, dilation or ceil_mode."""
        def two(v, n: int) -> bool:
            return v == n or v == (n, n) or v == [n, n]
        return (two(self.kernel_size, 2) and (self.stride is None or two(self.stride, 2)) and
                two(self.padding, 0) and two(self.dilation, 1) and self.ceil_mode is False)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, padding={self.padding}"


class AvgPool2d(Module):
    """Mean over ``kernel_size`` windows, moving by ``stride`` (default: the kernel size)."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, padding={self.padding}"
