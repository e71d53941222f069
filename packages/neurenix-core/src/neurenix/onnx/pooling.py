"""Rules of the pooling layers: MaxPool2d, and AvgPool2d (neurenix counts zero padding in the mean, as
PyTorch's default count_include_pad=True, and has no ceil_mode: the graph says the same)."""

from __future__ import annotations

from .. import nn
from ..ops.window import pair
from .graph import Graph, Value
from .rules import register


def _windows(m: nn.Module, op: str) -> dict:
    ks = pair(m.kernel_size, "kernel_size", op)
    st = pair(m.stride if m.stride is not None else m.kernel_size, "stride", op)
    ph, pw = pair(m.padding, "padding", op)
    return {"kernel_shape": list(ks), "strides": list(st), "pads": [ph, pw, ph, pw]}


def _pool(g: Graph, op: str, x: Value, path: str, **attributes) -> str:
    """``op`` over an (N, C, H, W) input, or a (C, H, W) one as a batch of one (ONNX pools batches only)."""
    if x.ndim == 4:
        return g.node(op, [x.name], path, **attributes)
    axis = g.ints([0], f"{path}.batch_axis")
    batch = g.node("Unsqueeze", [x.name, axis], f"{path}.batched")
    return g.node("Squeeze", [g.node(op, [batch], f"{path}.pooled", **attributes), axis], path)


@register(nn.MaxPool2d)
def max_pool2d(g: Graph, m: nn.MaxPool2d, x: Value, path: str) -> str:
    dilations = list(pair(m.dilation, "dilation", "MaxPool2d"))
    return _pool(g, "MaxPool", x, path, **_windows(m, "MaxPool2d"), dilations=dilations, ceil_mode=int(m.ceil_mode))


@register(nn.AvgPool2d)
def avg_pool2d(g: Graph, m: nn.AvgPool2d, x: Value, path: str) -> str:
    return _pool(g, "AveragePool", x, path, **_windows(m, "AvgPool2d"), count_include_pad=1)
