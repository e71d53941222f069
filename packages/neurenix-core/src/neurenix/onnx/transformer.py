"""Rules of the Transformer's encoder: TransformerEncoderLayer, TransformerEncoder, and MultiheadAttention as their
self-attention (query, key and value one input). The graph has one input, so an encoder alone takes no masks; a
model whose rule computes a key padding mask from its input (``TransformerEncoderClassifier``'s, from its token
ids) passes it down as a ``Padding``.

Inference semantics: attention dropout and the layers' Dropout are the identity. The attention is the formula
that MultiheadAttention computes, head by head in one batched MatMul: ONNX's Attention op comes in opset 23.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .. import nn
from ..nn import functional as F
from ..tensor import Tensor
from .graph import Graph, Value
from .layers import matmul_add
from .rules import register, rule_for, unsupported_option

_ACTIVATIONS = ((F.relu, nn.ReLU), (F.gelu, nn.GELU))  # the activations given by name, as functions


@dataclass(frozen=True, eq=False)
class Padding:
    """A key padding mask in the graph: ``additive`` names it as (N, 1, 1, S) of -inf where a key is padding and 0
    elsewhere (it broadcasts over the heads and the queries); ``example`` is the bool (N, S) mask of the example."""

    additive: str
    example: Tensor


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


@register(nn.TransformerEncoder)
def encoder(g: Graph, m: nn.TransformerEncoder, x: Value, path: str, padding: Padding | None = None) -> Value:
    """``m(x, src_key_padding_mask=padding)``: the layers in order, then ``norm``."""
    for i, layer in enumerate(m.layers):
        x = _masked(g, layer, x, _child(path, f"layers.{i}"), padding, encoder_layer)
    return x if m.norm is None else g.module(m.norm, x, _child(path, "norm"))


def _masked(g: Graph, m: nn.Module, x: Value, path: str, padding: Padding | None, rule) -> Value:
    """``m`` through ``g.module``, or with ``padding`` through ``rule``, which must be the rule of ``m``'s class (a
    subclass with a forward of its own has none, and raises)."""
    if padding is None:
        return g.module(m, x, path)
    if rule_for(m, path) is not rule:
        raise unsupported_option(m, path, "a key padding mask (only the encoder's own rules pass one down)")
    return rule(g, m, x, path, padding)


@register(nn.TransformerEncoderLayer)
def encoder_layer(g: Graph, m: nn.TransformerEncoderLayer, x: Value, path: str,
                  padding: Padding | None = None) -> Value:
    """forward's two residual blocks, the norms before (``norm_first``) or after them."""
    if m.norm_first:
        x = _add(g, x, self_attention(g, m.self_attn, g.module(m.norm1, x, _child(path, "norm1")),
                                      _child(path, "self_attn"), padding), _child(path, "attended"))
        return _add(g, x, _feed_forward(g, m, g.module(m.norm2, x, _child(path, "norm2")), path), path)
    x = _add(g, x, self_attention(g, m.self_attn, x, _child(path, "self_attn"), padding), _child(path, "attended"))
    x = g.module(m.norm1, x, _child(path, "norm1"))
    return g.module(m.norm2, _add(g, x, _feed_forward(g, m, x, path), _child(path, "fed")), _child(path, "norm2"))


def _add(g: Graph, a: Value, b: Value, name: str) -> Value:
    """A residual connection."""
    return Value(g.node("Add", [a.name, b.name], name), a.example + b.example)


def _feed_forward(g: Graph, m: nn.TransformerEncoderLayer, x: Value, path: str) -> Value:
    h = g.module(m.linear1, x, _child(path, "linear1"))
    act = m.activation
    if not isinstance(act, nn.Module):  # "relu" and "gelu" are functions: their layers' rules write them
        layer = next((cls for f, cls in _ACTIVATIONS if act is f), None)
        if layer is None:
            raise unsupported_option(m, path, f"activation={act!r} (a function: the exporter reads modules, so "
                                              "give 'relu', 'gelu' or a module of a supported class)")
        act = layer()
    return g.module(m.linear2, g.module(act, h, _child(path, "activation")), _child(path, "linear2"))


def self_attention(g: Graph, m: nn.MultiheadAttention, x: Value, path: str, padding: Padding | None = None) -> Value:
    """``m(x, x, x, key_padding_mask=padding, need_weights=False)[0]``: inputs (L, N, E), (N, L, E) with
    ``batch_first``, or (L, E) (without ``padding``)."""
    for option, value in (("add_bias_kv", m.bias_k is not None), ("add_zero_attn", m.add_zero_attn)):
        if value:
            raise unsupported_option(m, path, f"{option}=True")
    q, k, v = _heads(g, m, _batch_major(g, m, x.name, x.ndim, path, to=True), path)
    scores = g.node("MatMul", [q, k], f"{path}.scores")
    if padding is not None:  # neurenix adds the mask's -inf to the scores before the softmax
        scores = g.node("Add", [scores, padding.additive], f"{path}.masked_scores")
    weights = g.node("Softmax", [scores], f"{path}.weights", axis=-1)
    out = g.node("Transpose", [g.node("MatMul", [weights, v], f"{path}.by_head")], f"{path}.heads", perm=[0, 2, 1, 3])
    out = g.node("Reshape", [out, g.ints([0, 0, m.embed_dim], f"{path}.embed_shape")], f"{path}.concat")
    p = m.out_proj
    out = matmul_add(g, out, p.weight, p.bias, f"{path}.out_proj", f"{path}.out_proj.weight_t", f"{path}.out_proj.bias")
    y = _batch_major(g, m, out, x.ndim, path, to=False)
    mask = None if padding is None else padding.example
    return Value(y, m(x.example, x.example, x.example, key_padding_mask=mask, need_weights=False)[0])


def _heads(g: Graph, m: nn.MultiheadAttention, x: str, path: str) -> tuple[str, str, str]:
    """The projections of batch-major ``x`` (B, L, E) by head: queries (B, H, L, D), scaled as neurenix scales
    them, keys transposed (B, H, D, L), values (B, H, L, D)."""
    shape = g.ints([0, 0, m.num_heads, m.head_dim], f"{path}.head_shape")  # 0 keeps B and L, which may be dynamic
    q, k, v = (g.node("Reshape", [matmul_add(g, x, w, b, f"{path}.{n}", f"{path}.{n}_proj_weight_t",
                                             f"{path}.{n}_proj_bias"), shape], f"{path}.{n}_heads")
               for n, (w, b) in zip("qkv", m._projections()))
    q = g.node("Mul", [q, g.scalar(math.sqrt(1.0 / m.head_dim), f"{path}.scale")], f"{path}.q_scaled")
    return (g.node("Transpose", [q], f"{path}.q_by_head", perm=[0, 2, 1, 3]),
            g.node("Transpose", [k], f"{path}.k_by_head_t", perm=[0, 2, 3, 1]),
            g.node("Transpose", [v], f"{path}.v_by_head", perm=[0, 2, 1, 3]))


def _batch_major(g: Graph, m: nn.MultiheadAttention, x: str, ndim: int, path: str, to: bool) -> str:
    """``x`` to (B, L, E) from the layer's layout (``to``), or back: a transpose without ``batch_first``, a batch
    axis of one for an unbatched (L, E) input."""
    if ndim == 2:
        axis = g.ints([0], f"{path}.batch_axis")
        return g.node("Unsqueeze" if to else "Squeeze", [x, axis], f"{path}.batched" if to else path)
    if m.batch_first:
        return x
    return g.node("Transpose", [x], f"{path}.batch_major" if to else path, perm=[1, 0, 2])
