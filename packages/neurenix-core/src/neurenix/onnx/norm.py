"""The rule of BatchNorm1d and BatchNorm2d, with inference semantics (as after ``model.eval()``).

With running statistics the layer is ONNX's BatchNormalization. Without (``track_running_stats=False``)
neurenix normalises by the batch's own statistics in both modes, and so does the graph: the mean and the
biased variance over every axis but the channels', computed as ``nn.functional.batch_norm`` does.
"""

from __future__ import annotations

import numpy as np

from .. import nn
from .graph import Graph, Value
from .rules import register


@register(nn.BatchNorm1d, nn.BatchNorm2d)
def batch_norm(g: Graph, m: nn.BatchNorm1d, x: Value, path: str) -> str:
    c = m.num_features
    weight = g.tensor(m.weight, f"{path}.weight") if m.affine else g.constant(np.ones(c), f"{path}.weight")
    bias = g.tensor(m.bias, f"{path}.bias") if m.affine else g.constant(np.zeros(c), f"{path}.bias")
    if m.track_running_stats:
        mean, var = g.tensor(m.running_mean, f"{path}.running_mean"), g.tensor(m.running_var, f"{path}.running_var")
        return g.node("BatchNormalization", [x.name, weight, bias, mean, var], path, epsilon=float(m.eps))
    return _batch_statistics(g, m, x, path, weight, bias)


def _batch_statistics(g: Graph, m: nn.BatchNorm1d, x: Value, path: str, weight: str, bias: str) -> str:
    axes = [a for a in range(x.ndim) if a != 1]
    per_channel = g.ints([m.num_features] + [1] * (x.ndim - 2), f"{path}.channel_shape")
    mean = g.reduce("ReduceMean", x.name, axes, f"{path}.mean")
    d = g.node("Sub", [x.name, mean], f"{path}.centred")
    var = g.reduce("ReduceMean", g.node("Mul", [d, d], f"{path}.squares"), axes, f"{path}.var")
    std = g.node("Sqrt", [g.node("Add", [var, g.scalar(m.eps, f"{path}.eps")], f"{path}.var_eps")], f"{path}.std")
    scale = g.node("Div", [g.node("Reshape", [weight, per_channel], f"{path}.w"), std], f"{path}.scale")
    out = g.node("Mul", [d, scale], f"{path}.scaled")
    return g.node("Add", [out, g.node("Reshape", [bias, per_channel], f"{path}.b")], path)
