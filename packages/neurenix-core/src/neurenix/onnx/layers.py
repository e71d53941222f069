"""Rules of the containers, the fully connected and convolution layers and the shape layers."""

from __future__ import annotations

from .. import nn
from .graph import Graph, Value
from .rules import register

_END = 2**63 - 1  # Slice's "to the end"


@register(nn.Sequential)
def sequential(g: Graph, m: nn.Sequential, x: Value, path: str) -> Value:
    for name, child in m.named_children():
        x = g.module(child, x, f"{path}.{name}" if path else name)
    return x


@register(nn.Identity, nn.Dropout)
def identity(g: Graph, m: nn.Module, x: Value, path: str) -> str:
    return x.name  # Dropout is the identity in inference


@register(nn.Linear)
def linear(g: Graph, m: nn.Linear, x: Value, path: str) -> str:
    w = g.tensor(m.weight, f"{path}.weight")
    b = [g.tensor(m.bias, f"{path}.bias")] if m.bias is not None else []
    if x.ndim == 2:
        return g.node("Gemm", [x.name, w, *b], path, transB=1)
    # MatMul broadcasts over leading axes, which Gemm does not take
    wt = g.constant(m.weight.detach().numpy().T, f"{path}.weight_t")
    y = g.node("MatMul", [x.name, wt], f"{path}.matmul" if b else path)
    return g.node("Add", [y, *b], path) if b else y


@register(nn.Conv2d)
def conv2d(g: Graph, m: nn.Conv2d, x: Value, path: str) -> str:
    inputs = [x.name, g.tensor(m.weight, f"{path}.weight")]
    if m.bias is not None:
        inputs.append(g.tensor(m.bias, f"{path}.bias"))
    ph, pw = m.padding
    return g.node("Conv", inputs, path, kernel_shape=list(m.kernel_size), strides=list(m.stride),
                  pads=[ph, pw, ph, pw], dilations=list(m.dilation), group=m.groups)


@register(nn.Flatten)
def flatten(g: Graph, m: nn.Flatten, x: Value, path: str) -> str:
    start, end = (d % x.ndim if x.ndim else 0 for d in (m.start_dim, m.end_dim))
    if start >= end:
        return x.name
    if start == 1 and end == x.ndim - 1:
        return g.node("Flatten", [x.name], path, axis=1)
    # the axes kept on either side are read at run time, so that any of them may be dynamic
    shape = g.node("Shape", [x.name], f"{path}.shape")
    head = g.node("Slice", [shape, g.ints([0], f"{path}.zero"), g.ints([start], f"{path}.start")], f"{path}.head")
    tail = g.node("Slice", [shape, g.ints([end + 1], f"{path}.end"), g.ints([_END], f"{path}.last")], f"{path}.tail")
    target = g.node("Concat", [head, g.ints([-1], f"{path}.flat"), tail], f"{path}.target", axis=0)
    return g.node("Reshape", [x.name, target], path)
