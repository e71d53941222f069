"""Convolution layers: Conv1d, Conv2d and the transposed ConvTranspose1d, ConvTranspose2d."""

from __future__ import annotations

import math

from .. import creation
from ..arguments import integer
from ..ops.window import pair, single
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module, Parameter


def conv_geometry(m: Module, in_channels: int, out_channels: int, kernel_size, stride, padding, dilation,
                  groups: int, window) -> None:
    """Check a convolution's arguments and set them on ``m`` (``in_channels``, ``out_channels``, ``groups`` and the
    window tuples): the float layers' and the int8 ``nn.quantized.Conv2d``'s. ``window(value, name, layer)`` checks
    a window argument as a tuple of the layer's dimensions."""
    name = type(m).__name__
    in_channels = integer(in_channels, "in_channels", name, minimum=0)
    out_channels = integer(out_channels, "out_channels", name, minimum=0)
    groups = integer(groups, "groups", name, minimum=1)
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible "
                         f"by groups ({groups})")
    m.in_channels, m.out_channels, m.groups = in_channels, out_channels, groups
    m.kernel_size, m.stride = window(kernel_size, "kernel_size", name), window(stride, "stride", name)
    m.padding, m.dilation = window(padding, "padding", name), window(dilation, "dilation", name)


def conv_repr(m: Module) -> str:
    """``extra_repr`` of a convolution (PyTorch's: the non-default arguments)."""
    s = f"{m.in_channels}, {m.out_channels}, kernel_size={m.kernel_size}, stride={m.stride}"
    if any(m.padding):
        s += f", padding={m.padding}"
    if any(d != 1 for d in m.dilation):
        s += f", dilation={m.dilation}"
    if any(getattr(m, "output_padding", ())):
        s += f", output_padding={m.output_padding}"
    if m.groups != 1:
        s += f", groups={m.groups}"
    return s + ("" if m.bias is not None else ", bias=False")


class _ConvNd(Module):
    """What the convolutions share: the checked arguments (:func:`conv_geometry`), weight (out, in/groups,
    *kernel_size) (transposed: (in, out/groups, *kernel_size)), bias (out,), PyTorch's initialisation."""

    transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride, padding, dilation, groups: int,
                 bias: bool, device, dtype, window):
        super().__init__()
        conv_geometry(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, window)
        rows, cols = (self.in_channels, self.out_channels) if self.transposed else (self.out_channels,
                                                                                     self.in_channels)
        self.weight = Parameter(creation.empty(rows, cols // self.groups, *self.kernel_size, dtype=dtype,
                                               device=device))
        if bias:
            self.bias = Parameter(creation.empty(self.out_channels, dtype=dtype, device=device))
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
        return conv_repr(self)


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


class _ConvTransposeNd(_ConvNd):
    """What ConvTranspose1d and ConvTranspose2d share: ``output_padding`` (checked against stride and dilation by
    the functional) and ``forward(x, output_size=None)``, which picks the output_padding that gives that size."""

    transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride, padding, output_padding, groups: int,
                 bias: bool, dilation, device, dtype, window):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, device,
                         dtype, window)
        self.output_padding = window(output_padding, "output_padding", type(self).__name__)

    def _output_padding(self, x: Tensor, output_size) -> tuple:
        """PyTorch's rule: ``output_size`` (the spatial size, or with N and C in front) must lie within a stride
        of the size output_padding 0 gives; the difference is the output_padding."""
        if output_size is None:
            return self.output_padding
        dims = len(self.kernel_size)
        size = tuple(int(v) for v in output_size)[-dims:]
        if len(size) != dims:
            raise ValueError(f"{type(self).__name__}: output_size {tuple(output_size)} needs {dims} spatial sizes")
        least = F._conv_transpose_size(x.shape[-dims:], self.kernel_size, self.stride, self.padding, self.dilation,
                                      (0,) * dims)
        if any(not lo <= v < lo + s for v, lo, s in zip(size, least, self.stride)):
            raise ValueError(f"{type(self).__name__}: output_size {size} is not reachable from an input of "
                             f"{tuple(x.shape[-dims:])}: each size must lie in [{least}, {least} + stride "
                             f"{self.stride})")
        return tuple(v - lo for v, lo in zip(size, least))


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution over (N, C, L) or (C, L) inputs; weight (in, out/groups, k), as PyTorch's."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, bias,
                         dilation, device, dtype, lambda v, name, op: (single(v, name, op),))

    def forward(self, x: Tensor, output_size=None) -> Tensor:
        return F.conv_transpose1d(x, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(x, output_size), self.groups, self.dilation)


class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution over (N, C, H, W) or (C, H, W) inputs; weight (in, out/groups, kh, kw),
    initialised as PyTorch's."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, bias,
                         dilation, device, dtype, pair)

    def forward(self, x: Tensor, output_size=None) -> Tensor:
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(x, output_size), self.groups, self.dilation)
