"""Rules of the containers, the fully connected, convolution and embedding layers and the shape layers."""

from __future__ import annotations

from .. import nn
from ..tensor import Tensor
from .graph import Graph, Value
from .rules import register

_END = 2**63 - 1  # Slice's "to the end"


@register(nn.Sequential)
def sequential(g: Graph, m: nn.Sequential, x: Value, path: str) -> Value:
    for name, child in m.named_children():
        x = g.module(child, x, f"{path}.{name}" if path else name)
    return x


@register(nn.Identity, nn.Dropout, nn.Dropout2d)
def identity(g: Graph, m: nn.Module, x: Value, path: str) -> str:
    return x.name  # dropout is the identity in inference


@register(nn.Linear)
def linear(g: Graph, m: nn.Linear, x: Value, path: str) -> str:
    if x.ndim != 2:
        return matmul_add(g, x.name, m.weight, m.bias, path, f"{path}.weight_t", f"{path}.bias")
    w = g.tensor(m.weight, f"{path}.weight")
    b = [g.tensor(m.bias, f"{path}.bias")] if m.bias is not None else []
    return g.node("Gemm", [x.name, w, *b], path, transB=1)


def matmul_add(g: Graph, x: str, weight: Tensor, bias: Tensor | None, path: str, weight_name: str,
               bias_name: str) -> str:
    """``x @ weight.T + bias`` for an input of any rank: MatMul broadcasts over leading axes, which Gemm does not
    take. The initializers: the transposed weight named ``weight_name``, the bias ``bias_name``."""
    y = g.node("MatMul", [x, g.constant(weight.detach().numpy().T, weight_name)],
               f"{path}.matmul" if bias is not None else path)
    return g.node("Add", [y, g.tensor(bias, bias_name)], path) if bias is not None else y


@register(nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d)
def conv(g: Graph, m: nn.Conv2d, x: Value, path: str) -> str:
    # (ONNX's weight layouts are neurenix's and PyTorch's: (out, in/groups, *k), transposed (in, out/groups, *k))
    inputs = [g.tensor(m.weight, f"{path}.weight")]
    if m.bias is not None:
        inputs.append(g.tensor(m.bias, f"{path}.bias"))
    extra = {"output_padding": list(m.output_padding)} if m.transposed else {}
    return g.batched("ConvTranspose" if m.transposed else "Conv", x, inputs, len(m.kernel_size) + 2, path,
                     kernel_shape=list(m.kernel_size), strides=list(m.stride), pads=list(m.padding) * 2,
                     dilations=list(m.dilation), group=m.groups, **extra)


@register(nn.Embedding)
def embedding(g: Graph, m: nn.Embedding, x: Value, path: str) -> str:
    if m.max_norm is not None:  # (a Gather would read rows neurenix rescales at lookup: other values, silently)
        raise ValueError(f"neurenix.onnx.export: {path} is an Embedding with max_norm={m.max_norm}, which rescales "
                         "rows in place at lookup; ONNX's Gather does not. Set its max_norm to None to export the "
                         "table as it is")
    return g.node("Gather", [g.tensor(m.weight, f"{path}.weight"), x.name], path, axis=0)


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
