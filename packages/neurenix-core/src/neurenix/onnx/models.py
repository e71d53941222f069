"""Rules of the backbones of ``neurenix.models``, each its class's ``forward`` step by step, its layers through
their own rules (``graph.module``): ResNet12Block and ResNet12, WideBasicBlock, WideGroup and WideResNet (and
WRN28_10, which keeps its forward), TransformerEncoderClassifier, and DropBlock2d (the identity at inference, as
Dropout). Conv4 is a Sequential: it exports with Sequential's rule.
"""

from __future__ import annotations

import math

import numpy as np
from onnx import helper, numpy_helper

from ..models import (
    DropBlock2d,
    ResNet12,
    ResNet12Block,
    TransformerEncoderClassifier,
    WideBasicBlock,
    WideGroup,
    WideResNet,
    sinusoidal_positions,
)
from ..tensor import tensor
from .graph import Graph, Value
from .layers import identity
from .rules import register
from .transformer import Padding, _masked, encoder

register(DropBlock2d)(identity)  # drop_block2d returns its input when not training


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _add(g: Graph, a: Value, b: Value, name: str) -> Value:
    """A residual connection."""
    return Value(g.node("Add", [a.name, b.name], name), a.example + b.example)


def _run(g: Graph, m, x: Value, path: str, *names: str) -> Value:
    """``x`` through ``m``'s children ``names`` in turn (a name twice: the same layer twice, as a shared ReLU)."""
    for name in names:
        x = g.module(getattr(m, name), x, _child(path, name))
    return x


@register(ResNet12Block)
def resnet12_block(g: Graph, m: ResNet12Block, x: Value, path: str) -> Value:
    out = _run(g, m, x, path, "conv1", "bn1", "relu", "conv2", "bn2", "relu", "conv3", "bn3")
    out = _add(g, out, g.module(m.downsample, x, _child(path, "downsample")), _child(path, "residual"))
    return _run(g, m, out, path, "relu", "maxpool", "drop")


def _global_mean(g: Graph, x: Value, path: str) -> Value:
    """``x.mean((2, 3))``: over the positions, any image size."""
    return Value(g.reduce("ReduceMean", x.name, [2, 3], _child(path, "mean"), keepdims=False), x.example.mean((2, 3)))


def _head(g: Graph, m, x: Value, path: str) -> Value:
    return x if m.fc is None else g.module(m.fc, x, _child(path, "fc"))


@register(ResNet12)
def resnet12(g: Graph, m: ResNet12, x: Value, path: str) -> Value:
    x = _run(g, m, x, path, "layer1", "layer2", "layer3", "layer4")
    if m.avg_pool:
        x = _global_mean(g, x, path)
    else:
        x = Value(g.node("Flatten", [x.name], _child(path, "flatten"), axis=1), x.example.flatten(1))
    return _head(g, m, x, path)


@register(WideBasicBlock)
def wide_basic_block(g: Graph, m: WideBasicBlock, x: Value, path: str) -> Value:
    act = _run(g, m, x, path, "bn1", "relu1")
    out = _run(g, m, act, path, "conv1", "bn2", "relu2", "dropout", "conv2")
    # an identity shortcut carries the input itself, a projection the activated input (as forward)
    shortcut = x if m.equal_in_out else g.module(m.convShortcut, act, _child(path, "convShortcut"))
    return _add(g, out, shortcut, path)


@register(WideGroup)
def wide_group(g: Graph, m: WideGroup, x: Value, path: str) -> Value:
    return g.module(m.layer, x, _child(path, "layer"))


@register(WideResNet)
def wide_resnet(g: Graph, m: WideResNet, x: Value, path: str) -> Value:
    x = _run(g, m, x, path, "conv1", "block1", "block2", "block3", "bn1", "relu")
    return _head(g, m, _global_mean(g, x, path), path)


@register(TransformerEncoderClassifier)
def transformer_encoder_classifier(g: Graph, m: TransformerEncoderClassifier, x: Value, path: str) -> Value:
    """Embedding plus the sinusoidal positions of the input's length (computed in the graph, in float64 as
    ``sinusoidal_positions``: the length may be dynamic), the encoder with the padding mask of the token ids
    (``Equal`` to ``padding_idx``), then the pooling and the head."""
    emb = g.module(m.embedding, x, _child(path, "embedding"))
    positions = _positions(g, x, emb.shape[-1], path)
    example = emb.example + tensor(sinusoidal_positions(x.shape[1], emb.shape[-1]), dtype=emb.example.dtype)
    h = g.module(m.dropout, Value(g.node("Add", [emb.name, positions], _child(path, "positioned")), example),
                 _child(path, "dropout"))
    padding = is_padding = None
    if m.padding_idx is not None:
        is_padding = g.node("Equal", [x.name, g.ints([m.padding_idx], _child(path, "padding_idx"))],
                            _child(path, "is_padding"))
        additive = g.node("Where", [is_padding, g.scalar(-math.inf, _child(path, "minus_inf")),
                                    g.scalar(0.0, _child(path, "zero"))], _child(path, "padding_scores"))
        additive = g.node("Unsqueeze", [additive, g.ints([1, 2], _child(path, "head_query_axes"))],
                          _child(path, "padding_mask"))
        padding = Padding(additive, x.example == m.padding_idx)
    h = _masked(g, m.encoder, h, _child(path, "encoder"), padding, encoder)
    return _head(g, m, _pool(g, m, h, padding, is_padding, path), path)


def _positions(g: Graph, x: Value, d_model: int, path: str) -> str:
    """``sinusoidal_positions(S, d_model)`` for the length S of ``x`` (N, S), in the graph's dtype: angles
    ``position * rate`` (S, ceil(d/2)), their sin and cos interleaved, cut to ``d_model`` columns."""
    half = (d_model + 1) // 2
    rate = np.exp(-math.log(10000.0) * np.arange(0, d_model, 2) / d_model)  # as sinusoidal_positions, float64
    p = _child(path, "positions")
    length = g.node("Gather", [g.node("Shape", [x.name], f"{p}.shape"), g.ints([1], f"{p}.length_axis")],
                    f"{p}.length")
    start, step = _raw(g, np.array(0.0), f"{p}.start"), _raw(g, np.array(1.0), f"{p}.step")
    count = g.node("Cast", [g.node("Squeeze", [length], f"{p}.count_int")], f"{p}.count",
                   to=helper.np_dtype_to_tensor_dtype(np.dtype(np.float64)))
    position = g.node("Unsqueeze", [g.node("Range", [start, count, step], f"{p}.index"), g.ints([1], f"{p}.column")],
                      f"{p}.position")  # (S, 1), float64
    rates = _raw(g, rate.reshape(1, half), f"{p}.rate")
    angle = g.node("Mul", [position, rates], f"{p}.angle")  # (S, half)
    last = g.ints([-1], f"{p}.pair_axis")
    pairs = [g.node("Unsqueeze", [g.node(op, [angle], f"{p}.{op.lower()}"), last], f"{p}.{op.lower()}_pair")
             for op in ("Sin", "Cos")]
    table = g.node("Reshape", [g.node("Concat", pairs, f"{p}.pairs", axis=-1), g.ints([0, 2 * half], f"{p}.flat")],
                   f"{p}.interleaved")  # (S, 2 * half): sin, cos, sin, cos...
    if 2 * half != d_model:  # an odd d_model ends with a sin
        table = g.node("Slice", [table, g.ints([0], f"{p}.from"), g.ints([d_model], f"{p}.to"),
                                 g.ints([1], f"{p}.axis")], f"{p}.cut")
    return g.node("Cast", [table], p, to=helper.np_dtype_to_tensor_dtype(g.dtype))


def _raw(g: Graph, a: np.ndarray, name: str) -> str:
    """An initializer of ``a`` as it is: its dtype (``g.constant`` casts floats to the graph's), and its shape (a
    scalar stays one)."""
    name = g.unique(name)
    g.initializers.append(numpy_helper.from_array(a, name))
    return name


def _pool(g: Graph, m: TransformerEncoderClassifier, h: Value, padding: Padding | None, is_padding: str | None,
          path: str) -> Value:
    """``m._pool``: the first token's state, the mean over all tokens, or over the tokens that are not padding
    (the count clamped to 1, as forward)."""
    p = _child(path, "pool")
    example = m._pool(h.example, None if padding is None else padding.example)
    if m.pooling == "first":
        return Value(g.node("Gather", [h.name, _raw(g, np.array(0, np.int64), f"{p}.first")], p, axis=1), example)
    if is_padding is None:
        return Value(g.reduce("ReduceMean", h.name, [1], p, keepdims=False), example)
    keep = g.node("Cast", [g.node("Not", [is_padding], f"{p}.not_padding")], f"{p}.keep_flat",
                  to=helper.np_dtype_to_tensor_dtype(g.dtype))
    keep = g.node("Unsqueeze", [keep, g.ints([-1], f"{p}.feature_axis")], f"{p}.keep")  # (N, S, 1)
    total = g.reduce("ReduceSum", g.node("Mul", [h.name, keep], f"{p}.kept"), [1], f"{p}.sum", keepdims=False)
    count = g.node("Max", [g.reduce("ReduceSum", keep, [1], f"{p}.count", keepdims=False),
                          g.scalar(1.0, f"{p}.one")], f"{p}.count_at_least_one")
    return Value(g.node("Div", [total, count], p), example)
