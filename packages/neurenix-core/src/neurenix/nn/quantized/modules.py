"""Statically quantized layers: int8 weights, and the input quantized with a scale and zero point calibrated
beforehand (``neurenix.quantization.prepare`` / ``convert``)."""

from __future__ import annotations

from ... import creation
from ... import dtypes as _dt
from ...arguments import integer
from ...ops import quantized as Q
from ...ops.window import pair
from ...tensor import Tensor
from ..conv import conv_geometry, conv_repr
from ..module import Module

__all__ = ["Conv2d", "Linear"]


class _Quantized(Module):
    """int8 ``weight`` with one float32 ``weight_scale`` per output channel, a float32 ``bias`` (or None), and,
    unless ``dynamic``, the input's ``scale`` and ``zero_point``: all buffers, so they are in ``state_dict()``."""

    dynamic = False

    def _buffers(self, weight_shape: tuple, bias: bool, device) -> None:
        out = weight_shape[0]
        self.register_buffer("weight", creation.zeros(*weight_shape, dtype=_dt.int8, device=device))
        self.register_buffer("weight_scale", creation.ones(out, device=device))
        self.register_buffer("bias", creation.zeros(out, device=device) if bias else None)
        if not self.dynamic:
            self.register_buffer("scale", creation.tensor(1.0, device=device))
            self.register_buffer("zero_point", creation.tensor(0, device=device))

    def _set_weight(self, weight: Tensor, bias: Tensor | None) -> None:
        """Quantize a float weight per output channel (symmetric) into this layer's buffers."""
        weight = weight.detach().float()
        scales = Q.symmetric_scales(weight)
        self.weight = Q.quantize_per_channel(weight, scales)
        self.weight_scale = scales
        if bias is not None:
            self.bias = bias.detach().float().clone()

    def _input_qparams(self) -> tuple:
        return (None, None) if self.dynamic else (float(self.scale.item()), int(self.zero_point.item()))

    def set_input_qparams(self, scale: float, zero_point: int) -> None:
        """Set the input's quantization (static layers): what calibration found."""
        scale, zero_point = Q._checked_qparams(scale, zero_point, type(self).__name__)
        self.scale = creation.tensor(scale, device=self.weight.device)
        self.zero_point = creation.tensor(zero_point, device=self.weight.device)

    def _qparams_repr(self) -> str:
        return ", dynamic" if self.dynamic else f", scale={self.scale.item():.6g}, zero_point={self.zero_point.item()}"


class Linear(_Quantized):
    """``y = x @ W.T + b`` in int8: W per output channel (``weight`` int8 (out, in), ``weight_scale``), the input
    quantized per tensor with the calibrated ``scale`` and ``zero_point``. PyTorch's
    ``torch.ao.nn.quantized.Linear``, except that it takes and returns float32 tensors (as an ONNX QDQ graph)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None):
        super().__init__()
        name = type(self).__name__
        self.in_features = integer(in_features, "in_features", name, minimum=0)
        self.out_features = integer(out_features, "out_features", name, minimum=0)
        self._buffers((self.out_features, self.in_features), bias, device)

    @classmethod
    def from_float(cls, mod: Module, scale: float | None = None, zero_point: int | None = None):
        """The quantized copy of a float ``neurenix.nn.Linear`` (``scale``/``zero_point``: the input's, for a static
        layer)."""
        q = cls(mod.in_features, mod.out_features, mod.bias is not None, device=mod.weight.device)
        q._set_weight(mod.weight, mod.bias)
        if not cls.dynamic:
            q.set_input_qparams(scale, zero_point)
        return q

    def forward(self, x: Tensor) -> Tensor:
        return Q.quantized_linear(x, self.weight, self.weight_scale, self.bias, *self._input_qparams())

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
                + self._qparams_repr())


class Conv2d(_Quantized):
    """2-D convolution in int8: ``weight`` int8 (O, C/groups, kh, kw) per output channel, the input quantized per
    tensor with the calibrated ``scale`` and ``zero_point``; PyTorch's ``torch.ao.nn.quantized.Conv2d`` taking and
    returning float32."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, device=None):
        super().__init__()
        conv_geometry(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, pair)
        self._buffers((self.out_channels, self.in_channels // self.groups, *self.kernel_size), bias, device)

    @classmethod
    def from_float(cls, mod: Module, scale: float, zero_point: int):
        """The quantized copy of a float ``neurenix.nn.Conv2d`` whose input quantizes with ``scale`` and
        ``zero_point``."""
        q = cls(mod.in_channels, mod.out_channels, mod.kernel_size, mod.stride, mod.padding, mod.dilation, mod.groups,
                mod.bias is not None, device=mod.weight.device)
        q._set_weight(mod.weight, mod.bias)
        q.set_input_qparams(scale, zero_point)
        return q

    def forward(self, x: Tensor) -> Tensor:
        return Q.quantized_conv2d(x, self.weight, self.weight_scale, self.bias, *self._input_qparams(), self.stride,
                                  self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        return conv_repr(self) + self._qparams_repr()
