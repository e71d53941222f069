"""Convolution layers: Conv1d and Conv2d."""

from __future__ import annotations

import math

from .. import creation
from ..arguments import integer
from ..ops.window import pair, single
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module, Parameter


class _ConvNd(Module):
    """What Conv1d and Conv2d share: the checked arguments, weight (out, in/groups, *kernel_size), bias (out,),
    PyTorch's initialisation. ``window(value, name, layer)`` checks a window argument as a tuple of the layer's
    dimensions."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride, padding, dilation, groups: int,
                 bias: bool, device, dtype, window):
        super().__init__()
        name = type(self).__name__
        in_channels = integer(in_channels, "in_channels", name, minimum=0)
        out_channels = integer(out_channels, "out_channels", name, minimum=0)
        groups = integer(groups, "groups", name, minimum=1)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible "
                             f"by groups ({groups})")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = window(kernel_size, "kernel_size", name), window(stride, "stride", name)
        self.padding, self.dilation = window(padding, "padding", name), window(dilation, "dilation", name)
        self.weight = Parameter(creation.empty(out_channels, in_channels // groups, *self.kernel_size, dtype=dtype,
                                               device=device))
        if bias:
            self.bias = Parameter(creation.empty(out_channels, dtype=dtype, device=device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init.fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in else 0.0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if any(self.padding):
            s += f", padding={self.padding}"
        if any(d != 1 for d in self.dilation):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")


class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L) or (C, L) inputs; weight (out, in/groups, k), initialised as PyTorch's. A
    weight (tasks, out, in/groups, k) holds one filter bank per task (see nn.task_axis)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, device,
                         dtype, lambda v, name, op: (single(v, name, op),))

    def forward(self, x: Tensor) -> Tensor:
        return F.conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class Conv2d(_ConvNd):
    """2-D convolution over (N, C, H, W) inputs; weight (out, in/groups, kh, kw), initialised as PyTorch's. A
    weight (tasks, out, in/groups, kh, kw) holds one filter bank per task (see nn.task_axis)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, device,
                         dtype, pair)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
