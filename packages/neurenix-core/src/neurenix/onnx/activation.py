"""Rules of the activation layers."""

from __future__ import annotations

import math

from .. import nn
from ..nn.functional import _softmax_dim
from .graph import Graph, Value
from .rules import register

_ONE_OP = {nn.ReLU: "Relu", nn.Sigmoid: "Sigmoid", nn.Tanh: "Tanh"}


@register(*_ONE_OP)
def elementwise(g: Graph, m: nn.Module, x: Value, path: str) -> str:
    op = next(op for cls, op in _ONE_OP.items() if isinstance(m, cls))  # subclasses included
    return g.node(op, [x.name], path)


@register(nn.LeakyReLU)
def leaky_relu(g: Graph, m: nn.LeakyReLU, x: Value, path: str) -> str:
    return g.node("LeakyRelu", [x.name], path, alpha=float(m.negative_slope))


@register(nn.Softmax)
def softmax(g: Graph, m: nn.Softmax, x: Value, path: str) -> str:
    return g.node("Softmax", [x.name], path, axis=_softmax_dim(x.example, m.dim, "softmax"))


@register(nn.LogSoftmax)
def log_softmax(g: Graph, m: nn.LogSoftmax, x: Value, path: str) -> str:
    return g.node("LogSoftmax", [x.name], path, axis=_softmax_dim(x.example, m.dim, "log_softmax"))


@register(nn.GELU)
def gelu(g: Graph, m: nn.GELU, x: Value, path: str) -> str:
    if g.opset >= 20:
        return g.node("Gelu", [x.name], path, approximate=m.approximate)
    # before opset 20, the formulas nn.functional.gelu computes
    if m.approximate == "tanh":
        cube = g.node("Mul", [x.name, g.node("Mul", [x.name, x.name], f"{path}.square")], f"{path}.cube")
        inner = g.node("Add", [x.name, g.node("Mul", [cube, g.scalar(0.044715, f"{path}.c")], f"{path}.cubic")],
                       f"{path}.inner")
        s = g.node("Tanh", [g.node("Mul", [inner, g.scalar(math.sqrt(2 / math.pi), f"{path}.k")], f"{path}.arg")],
                   f"{path}.tanh")
    else:
        s = g.node("Erf", [g.node("Mul", [x.name, g.scalar(math.sqrt(0.5), f"{path}.k")], f"{path}.arg")],
                   f"{path}.erf")
    half_x = g.node("Mul", [x.name, g.scalar(0.5, f"{path}.half")], f"{path}.half_x")
    return g.node("Mul", [half_x, g.node("Add", [s, g.scalar(1.0, f"{path}.one")], f"{path}.gate")], path)


@register(nn.SiLU)
def silu(g: Graph, m: nn.SiLU, x: Value, path: str) -> str:
    # ONNX's Swish comes in opset 24; x * sigmoid(x) is what nn.functional.silu computes
    return g.node("Mul", [x.name, g.node("Sigmoid", [x.name], f"{path}.sigmoid")], path)


@register(nn.ELU)
def elu(g: Graph, m: nn.ELU, x: Value, path: str) -> str:
    return g.node("Elu", [x.name], path, alpha=float(m.alpha))


@register(nn.Softplus)
def softplus(g: Graph, m: nn.Softplus, x: Value, path: str) -> str:
    """ONNX's Softplus has no beta or threshold: ``Softplus(beta * x) / beta``, and ``x`` where ``beta * x >
    threshold``, as nn.functional.softplus."""
    beta = g.scalar(m.beta, f"{path}.beta") if m.beta != 1 else None
    z = g.node("Mul", [x.name, beta], f"{path}.z") if beta else x.name
    soft = g.node("Softplus", [z], f"{path}.soft")
    if beta:
        soft = g.node("Div", [soft, beta], f"{path}.soft_over_beta")
    linear = g.node("Greater", [z, g.scalar(m.threshold, f"{path}.threshold")], f"{path}.linear")
    return g.node("Where", [linear, x.name, soft], path)
