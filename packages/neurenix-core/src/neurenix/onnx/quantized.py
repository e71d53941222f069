"""Rules of the int8 layers (``neurenix.nn.quantized``): QDQ graphs, as ONNX Runtime's quantizer writes them.

The input goes through QuantizeLinear and DequantizeLinear with the layer's calibrated scale and zero point (a
dynamic layer: DynamicQuantizeLinear, whose uint8 values are ours plus 128, with the same scale: the same real
numbers); the int8 weights are an initializer dequantized per output channel (axis 0). A runtime then runs the
float op on the dequantized operands or fuses the pattern into int8 kernels: either way the operands are exactly
the values neurenix's int8 kernels multiply.
"""

from __future__ import annotations

import numpy as np

from ..nn import quantized as nnq
from .graph import Graph, Value
from .rules import register


def _input(g: Graph, m, x: Value, path: str) -> str:
    """The quantized-and-dequantized input of layer ``m``."""
    if m.dynamic:
        q, scale, zero_point = (g.unique(f"{path}.input_{s}") for s in ("quantized", "scale", "zero_point"))
        g.nodes.append(_node(g, "DynamicQuantizeLinear", [x.name], [q, scale, zero_point], path))
        return g.node("DequantizeLinear", [q, scale, zero_point], f"{path}.input")
    scale = g.constant(np.array(m.scale.item(), np.float32), f"{path}.scale")
    zero_point = g.constant(np.array(m.zero_point.item(), np.int8), f"{path}.zero_point")
    q = g.node("QuantizeLinear", [x.name, scale, zero_point], f"{path}.input_quantized")
    return g.node("DequantizeLinear", [q, scale, zero_point], f"{path}.input")


def _weight(g: Graph, m, path: str, transposed: bool = False) -> str:
    """The int8 weight initializer (``transposed``: (in, out), for MatMul), dequantized per output channel."""
    w = np.array(m.weight.numpy())
    name = f"{path}.weight_t" if transposed else f"{path}.weight"
    w = g.constant(np.ascontiguousarray(w.T) if transposed else w, name)
    scale = g.constant(np.array(m.weight_scale.numpy(), np.float32), f"{path}.weight_scale")
    zero = g.constant(np.zeros(m.weight.shape[0], np.int8), f"{path}.weight_zero_point")
    return g.node("DequantizeLinear", [w, scale, zero], f"{path}.weight_dequantized", axis=int(transposed))


def _node(g: Graph, op: str, inputs: list[str], outputs: list[str], path: str):
    from onnx import helper
    return helper.make_node(op, inputs, outputs, name=f"{path}/{op}")


@register(nnq.Linear)
def linear(g: Graph, m: nnq.Linear, x: Value, path: str) -> str:
    xq, w = _input(g, m, x, path), _weight(g, m, path, transposed=x.ndim != 2)
    b = [g.constant(np.array(m.bias.numpy(), np.float32), f"{path}.bias")] if m.bias is not None else []
    if x.ndim == 2:
        return g.node("Gemm", [xq, w, *b], path, transB=1)
    y = g.node("MatMul", [xq, w], f"{path}.matmul" if b else path)  # (any rank: Gemm takes 2-D only)
    return g.node("Add", [y, *b], path) if b else y


@register(nnq.Conv2d)
def conv(g: Graph, m: nnq.Conv2d, x: Value, path: str) -> str:
    xq, w = _input(g, m, x, path), _weight(g, m, path)
    b = [g.constant(np.array(m.bias.numpy(), np.float32), f"{path}.bias")] if m.bias is not None else []
    return g.batched("Conv", Value(xq, x.example), [w, *b], 4, path, kernel_shape=list(m.kernel_size),
                     strides=list(m.stride), pads=list(m.padding) * 2, dilations=list(m.dilation), group=m.groups)
