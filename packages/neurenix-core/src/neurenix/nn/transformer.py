"""The Transformer's encoder: TransformerEncoderLayer and TransformerEncoder, as PyTorch's."""

from __future__ import annotations

import copy
from collections.abc import Callable

from ..arguments import choice, integer, number
from ..tensor import Tensor
from . import functional as F
from .attention import MultiheadAttention
from .container import ModuleList
from .dropout import Dropout
from .linear import Linear
from .module import Module
from .normalization import LayerNorm


class TransformerEncoderLayer(Module):
    """Self-attention and a feed-forward block (``linear2(dropout(activation(linear1(x))))``), each added back to
    its input: normalised after the sum (``norm_first=False``, the default) or applied to a normalised input
    (``norm_first=True``). ``activation`` is "relu", "gelu" or a callable. Inputs as MultiheadAttention's:
    (S, N, E), or (N, S, E) with ``batch_first``; ``forward(src, src_mask=None, src_key_padding_mask=None,
    is_causal=False)``.

    PyTorch's inference fast path (eval mode, no gradients) is not mimicked: where it returns zeros at padded
    positions of nested tensors, the values here are computed as in training; the unpadded values agree.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str | Callable[[Tensor], Tensor] = F.relu, layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        d_model = integer(d_model, "d_model", "TransformerEncoderLayer", minimum=1)
        dim_feedforward = integer(dim_feedforward, "dim_feedforward", "TransformerEncoderLayer", minimum=1)
        dropout = number(dropout, "dropout", "TransformerEncoderLayer", minimum=0.0, maximum=1.0)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1, self.dropout2 = Dropout(dropout), Dropout(dropout)
        if isinstance(activation, str):
            activation = {"relu": F.relu, "gelu": F.gelu}[choice(activation, "activation", "TransformerEncoderLayer",
                                                                 ("relu", "gelu"))]
        elif not callable(activation):
            raise TypeError(f"TransformerEncoderLayer: activation must be 'relu', 'gelu' or a callable, got "
                            f"{type(activation).__name__}")
        self.activation = activation

    def forward(self, src: Tensor, src_mask: Tensor | None = None, src_key_padding_mask: Tensor | None = None,
                is_causal: bool = False) -> Tensor:
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff_block(self.norm2(x))
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff_block(x))

    def _sa_block(self, x: Tensor, attn_mask, key_padding_mask, is_causal: bool) -> Tensor:
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                           is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x: Tensor) -> Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerEncoder(Module):
    """``num_layers`` copies of ``encoder_layer`` (each with its own parameters) run in turn, then ``norm`` if given;
    ``forward(src, mask=None, src_key_padding_mask=None, is_causal=None)``. ``enable_nested_tensor`` and
    ``mask_check`` are accepted for PyTorch's signature: they only steer PyTorch's inference fast path."""

    def __init__(self, encoder_layer: Module, num_layers: int, norm: Module | None = None,
                 enable_nested_tensor: bool = True, mask_check: bool = True):
        super().__init__()
        if not isinstance(encoder_layer, Module):
            raise TypeError(f"TransformerEncoder: encoder_layer must be a Module, got {type(encoder_layer).__name__}")
        self.num_layers = integer(num_layers, "num_layers", "TransformerEncoder", minimum=0)
        self.layers = ModuleList(copy.deepcopy(encoder_layer) for _ in range(self.num_layers))
        self.norm = norm
        self.enable_nested_tensor, self.mask_check = enable_nested_tensor, mask_check

    def forward(self, src: Tensor, mask: Tensor | None = None, src_key_padding_mask: Tensor | None = None,
                is_causal: bool | None = None) -> Tensor:
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=bool(is_causal))
        return x if self.norm is None else self.norm(x)
