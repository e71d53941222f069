"""Rules of the pooling layers: MaxPool1d/2d, AvgPool1d/2d (neurenix counts zero padding in the mean, as
PyTorch's default count_include_pad=True, and has no ceil_mode: the graph says the same), and AdaptiveAvgPool2d."""

from __future__ import annotations

from .. import nn
from ..nn.resampling import _bins
from ..ops.window import pair, single
from .graph import Graph, Value
from .rules import register


def _one(v, name: str, op: str) -> tuple:
    """A 1-D window argument as a tuple of one, as ``pair`` gives two."""
    return (single(v, name, op),)


def _windows(m: nn.Module) -> tuple[dict, int]:
    """A 1-D or 2-D pool's window attributes, and the rank of its batched input."""
    op = type(m).__name__
    window, rank = (_one, 3) if isinstance(m, (nn.MaxPool1d, nn.AvgPool1d)) else (pair, 4)
    ks = window(m.kernel_size, "kernel_size", op)
    st = window(m.stride if m.stride is not None else m.kernel_size, "stride", op)
    attributes = {"kernel_shape": list(ks), "strides": list(st), "pads": list(window(m.padding, "padding", op)) * 2}
    if hasattr(m, "dilation"):
        attributes["dilations"] = list(window(m.dilation, "dilation", op))
    return attributes, rank


@register(nn.MaxPool1d, nn.MaxPool2d)
def max_pool(g: Graph, m: nn.MaxPool2d, x: Value, path: str) -> str:
    attributes, rank = _windows(m)
    return g.batched("MaxPool", x, [], rank, path, **attributes, ceil_mode=int(m.ceil_mode))


@register(nn.AvgPool1d, nn.AvgPool2d)
def avg_pool(g: Graph, m: nn.AvgPool2d, x: Value, path: str) -> str:
    attributes, rank = _windows(m)
    return g.batched("AveragePool", x, [], rank, path, **attributes, count_include_pad=1)


@register(nn.AdaptiveAvgPool2d)
def adaptive_avg_pool2d(g: Graph, m: nn.AdaptiveAvgPool2d, x: Value, path: str) -> str:
    """ONNX has no adaptive pooling: an axis pooled to 1 is a ReduceMean (for any size, so it may be dynamic); one
    resized otherwise is a product with neurenix's (out, in) matrix of bins, which fixes its size to the example's.
    """
    (h, w), (oh, ow) = x.shape[-2:], m(x.example).shape[-2:]
    means = [a for a, o, n in ((-2, oh, h), (-1, ow, w)) if o == 1 < n]
    rows, cols = oh not in (1, h), ow not in (1, w)
    y = x.name
    if means:
        y = g.reduce("ReduceMean", y, means, f"{path}.mean" if rows or cols else path)
    if rows:
        y = g.node("MatMul", [g.constant(_bins(h, oh), f"{path}.row_bins"), y], f"{path}.rows" if cols else path)
    if cols:
        y = g.node("MatMul", [y, g.constant(_bins(w, ow).T, f"{path}.column_bins")], path)
    return y
