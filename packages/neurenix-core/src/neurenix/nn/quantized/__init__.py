"""int8 layers of quantized models (inference only), as PyTorch's ``torch.ao.nn.quantized``: :class:`Linear` and
:class:`Conv2d` with calibrated (static) input quantization, and ``dynamic.Linear``, which quantizes its input
from the input's own range at every call. ``neurenix.quantization`` makes them from float layers."""

from . import dynamic
from .modules import Conv2d, Linear

__all__ = ["Conv2d", "Linear", "dynamic"]
