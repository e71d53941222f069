"""A small Transformer encoder over token sequences (Vaswani et al. 2017), the backbone of few-shot text
classification: sentences to one feature row each, for Prototypical Networks' prototypes or MAML's head."""

from __future__ import annotations

import math

import numpy as np

from ..arguments import choice, integer, number
from ..caches import remember
from ..errors import ShapeError
from ..nn.dropout import Dropout
from ..nn.linear import Linear
from ..nn.module import Module
from ..nn.sparse import Embedding
from ..nn.transformer import TransformerEncoder, TransformerEncoderLayer
from ..tensor import Tensor, tensor

_NAME = "TransformerEncoderClassifier"
_positions: dict = {}


def sinusoidal_positions(length: int, d_model: int) -> np.ndarray:
    """Vaswani et al.'s fixed encodings, (length, d_model) in float64: sin at even features, cos at odd ones,
    wavelengths from 2*pi to 10000*2*pi. Cached (read-only)."""
    key = (length, d_model)
    if key in _positions:
        return _positions[key]
    pos = np.arange(length)[:, None]
    rate = np.exp(-math.log(10000.0) * np.arange(0, d_model, 2) / d_model)
    out = np.zeros((length, d_model))
    out[:, 0::2] = np.sin(pos * rate)
    out[:, 1::2] = np.cos(pos * rate[:d_model // 2])
    out.flags.writeable = False
    return remember(_positions, key, out)


class TransformerEncoderClassifier(Module):
    """Token ids (N, S), int64, to features (N, d_model), or logits (N, ``out_features``) with a head (``fc``):
    ``embedding`` (padding_idx rows zero and frozen), plus fixed sinusoidal positions (``sinusoidal_positions``,
    made in the embeddings' dtype: no state, no length limit), dropout, ``encoder`` (``num_layers`` post-norm
    ``nn.TransformerEncoderLayer``, batch_first, padding masked out), then the mean over the tokens that are not
    padding (``pooling="mean"``) or the first token's state (``"first"``, a [CLS] token the caller puts first).

    Embeddings are not scaled by sqrt(d_model): Embedding starts N(0, 1), the scale of the positions already.
    Every sequence needs one token that is not padding (attention over nothing is NaN, as in PyTorch). Inside
    ``batched_call`` each layer takes per-task weights (MAML on text). ``out_features`` (attribute): the size of
    one output row.
    """

    def __init__(self, vocab_size: int, d_model: int = 64, nhead: int = 4, num_layers: int = 2,
                 dim_feedforward: int = 256, dropout: float = 0.1, padding_idx: int | None = 0,
                 out_features: int | None = None, pooling: str = "mean", activation: str = "relu"):
        super().__init__()
        vocab_size = integer(vocab_size, "vocab_size", _NAME, minimum=1)
        d_model = integer(d_model, "d_model", _NAME, minimum=2)
        dropout = number(dropout, "dropout", _NAME, minimum=0.0, maximum=1.0)
        self.pooling = choice(pooling, "pooling", _NAME, ("mean", "first"))
        self.embedding = Embedding(vocab_size, d_model, padding_idx=padding_idx)
        self.padding_idx = self.embedding.padding_idx
        self.dropout = Dropout(dropout)
        layer = TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation=activation,
                                        batch_first=True)
        self.encoder = TransformerEncoder(layer, integer(num_layers, "num_layers", _NAME, minimum=1),
                                          enable_nested_tensor=False)
        self.fc = None
        if out_features is not None:
            self.fc = Linear(d_model, integer(out_features, "out_features", _NAME, minimum=1))
        self.out_features = out_features or d_model

    def forward(self, tokens: Tensor) -> Tensor:
        if not isinstance(tokens, Tensor) or tokens.ndim != 2:
            raise ShapeError(f"{_NAME}: expected token ids of shape (N, S), got "
                             f"{getattr(tokens, 'shape', type(tokens).__name__)}")
        x = self.embedding(tokens)
        # made in x's dtype, not kept as a buffer: a float32 buffer cast to float64 would keep float32's rounding
        positions = tensor(sinusoidal_positions(tokens.shape[1], x.shape[-1]), dtype=x.dtype, device=x.device)
        x = self.dropout(x + positions)
        padding = None if self.padding_idx is None else tokens == self.padding_idx
        h = self.encoder(x, src_key_padding_mask=padding)
        return self._pool(h, padding) if self.fc is None else self.fc(self._pool(h, padding))

    def _pool(self, h: Tensor, padding: Tensor | None) -> Tensor:
        if self.pooling == "first":
            return h[:, 0]
        if padding is None:
            return h.mean(1)
        keep = (~padding).to(h.dtype).unsqueeze(-1)  # (N, S, 1)
        return (h * keep).sum(1) / keep.sum(1).clamp(min=1.0)
