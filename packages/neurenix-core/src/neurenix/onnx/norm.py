"""The rules of the normalisation layers.

BatchNorm1d and BatchNorm2d have inference semantics (as after ``model.eval()``): with running statistics the
layer is ONNX's BatchNormalization. Without (``track_running_stats=False``) neurenix normalises by the batch's
own statistics in both modes, and so does the graph: the mean and the biased variance over every axis but the
channels', computed as ``nn.functional.batch_norm`` does.

LayerNorm is ONNX's LayerNormalization from opset 17, GroupNorm its GroupNormalization from opset 21 (opset 18's
scales groups, not channels); before, and in float64 graphs, both are their formula: the ops compute the
statistics in their ``stash_type``, float32 at best, which would cost a float64 model its precision.
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


@register(nn.LayerNorm)
def layer_norm(g: Graph, m: nn.LayerNorm, x: Value, path: str) -> str:
    k = len(m.normalized_shape)
    weight, bias = (g.tensor(p, f"{path}.{name}") if p is not None else None
                    for p, name in ((m.weight, "weight"), (m.bias, "bias")))
    if _op_computes_it(g, 17):
        scale = weight or g.constant(np.ones(m.normalized_shape), f"{path}.weight")
        return g.node("LayerNormalization", [x.name, scale, *([bias] if bias else [])], path, axis=-k,
                      epsilon=float(m.eps))
    y = _normalize(g, x.name, list(range(-k, 0)), m.eps, path, last=weight is None and bias is None)
    return _affine(g, y, weight, bias, path)


@register(nn.GroupNorm)
def group_norm(g: Graph, m: nn.GroupNorm, x: Value, path: str) -> str:
    c, affine = m.num_channels, m.weight is not None
    if _op_computes_it(g, 21):
        scale = g.tensor(m.weight, f"{path}.weight") if affine else g.constant(np.ones(c), f"{path}.weight")
        bias = g.tensor(m.bias, f"{path}.bias") if affine else g.constant(np.zeros(c), f"{path}.bias")
        return g.node("GroupNormalization", [x.name, scale, bias], path, num_groups=m.num_groups,
                      epsilon=float(m.eps))
    # (N, groups, rest): 0 keeps the batch's size, so that it may be dynamic
    groups = g.node("Reshape", [x.name, g.ints([0, m.num_groups, -1], f"{path}.group_shape")], f"{path}.groups")
    y = _normalize(g, groups, [2], m.eps, path, last=False)
    y = g.node("Reshape", [y, g.node("Shape", [x.name], f"{path}.shape")], path if not affine else f"{path}.ungrouped")
    if not affine:
        return y
    per_channel = (c,) + (1,) * (x.ndim - 2)
    weight, bias = (g.constant(p.detach().numpy().reshape(per_channel), f"{path}.{name}")
                    for p, name in ((m.weight, "weight"), (m.bias, "bias")))
    return _affine(g, y, weight, bias, path)


def _op_computes_it(g: Graph, since: int) -> bool:
    """Whether the normalisation op exists at the graph's opset and computes in the graph's precision."""
    return g.opset >= since and g.dtype == np.float32


def _normalize(g: Graph, x: str, axes: list[int], eps: float, path: str, last: bool) -> str:
    """``(x - mean) / sqrt(var + eps)`` over ``axes`` (the biased variance); named ``path`` where ``last``."""
    d = g.node("Sub", [x, g.reduce("ReduceMean", x, axes, f"{path}.mean")], f"{path}.centred")
    var = g.reduce("ReduceMean", g.node("Mul", [d, d], f"{path}.squares"), axes, f"{path}.var")
    std = g.node("Sqrt", [g.node("Add", [var, g.scalar(eps, f"{path}.eps")], f"{path}.var_eps")], f"{path}.std")
    return g.node("Div", [d, std], path if last else f"{path}.normalized")


def _affine(g: Graph, y: str, weight: str | None, bias: str | None, path: str) -> str:
    """``y * weight + bias``, without what is None; the last node named ``path``."""
    if weight:
        y = g.node("Mul", [y, weight], f"{path}.scaled" if bias else path)
    return g.node("Add", [y, bias], path) if bias else y
