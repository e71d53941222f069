"""Dynamically quantized layers: int8 weights; the input quantized per call, from its own range."""

from __future__ import annotations

from .modules import Linear as _StaticLinear

__all__ = ["Linear"]


class Linear(_StaticLinear):
    """``y = x @ W.T + b`` with W int8 per output channel (``weight`` and ``weight_scale``) and ``x`` quantized at
    every call from its own range (ONNX DynamicQuantizeLinear's rule): PyTorch's
    ``torch.ao.nn.quantized.dynamic.Linear``. Made by ``neurenix.quantization.quantize_dynamic`` or
    :meth:`from_float`."""

    dynamic = True
