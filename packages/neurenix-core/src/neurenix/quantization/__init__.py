"""Post-training int8 quantization, PyTorch's eager-mode workflow (``torch.ao.quantization``):

- :func:`quantize_dynamic`: int8 weights for every ``Linear``; inputs quantized at every call from their range.
- :func:`prepare`, run calibration data through the result, then :func:`convert` (or :func:`quantize` for all
  three): int8 weights for ``Conv2d`` and ``Linear``, inputs quantized with the ranges calibration saw.

Weights are per output channel and symmetric, activations per tensor and affine (int8 with a zero point); the
layers compute exact int32 sums (C kernels with VNNI or dot-product instructions where the CPU has them) and
take and return float32. Quantized models run on the ``cpu``: other devices hold no int8 tensors. They export to
ONNX as QDQ graphs (``neurenix.onnx.export``). See docs/quantization.md.
"""

from ..ops.quantized import (
    affine_qparams,
    dequantize,
    quantize_per_channel,
    quantize_per_tensor,
    quantized_conv2d,
    quantized_linear,
    symmetric_scales,
)
from .fuse import fuse_conv_bn
from .observer import MinMaxObserver
from .workflow import convert, prepare, quantize, quantize_dynamic

__all__ = ["MinMaxObserver", "affine_qparams", "convert", "dequantize", "fuse_conv_bn", "prepare", "quantize",
           "quantize_dynamic", "quantize_per_channel", "quantize_per_tensor", "quantized_conv2d", "quantized_linear",
           "symmetric_scales"]
