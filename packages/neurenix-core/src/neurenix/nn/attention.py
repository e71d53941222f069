"""Multi-head attention, as PyTorch's ``nn.MultiheadAttention`` (composed from differentiable ops: any order).

Inside ``task_batch(T)`` (see nn.task_axis) axis 0 of each input holds T tasks one after another, whatever the
layout: (T*N, L, E) with ``batch_first``, (T*L, N, E) without, (T*L, E) unbatched. The tasks become T blocks of
the batch (B = T*N, task-major), so attention never mixes tasks, and projection weights with a leading task axis
apply to their own task's block. Masks then follow that batch: ``key_padding_mask`` (T*N, S) ((T, S) unbatched),
a 3-D ``attn_mask`` (T*N*num_heads, L, S); the returned weights are (T*N, L, S) ((T*L, S) unbatched).
"""

from __future__ import annotations

import math

from .. import creation
from ..arguments import integer, number
from ..errors import DTypeError, ShapeError
from ..ops import cat, matmul, softmax, where
from ..ops import expect_tensor as tensor
from ..tensor import Tensor
from . import functional as F
from . import init
from .linear import Linear, task_linear
from .module import Module, Parameter
from .task_axis import has_task_axis, split_tasks, task_count

_LAYER = "MultiheadAttention"


class MultiheadAttention(Module):
    """Attention of ``num_heads`` heads over ``embed_dim`` features, as PyTorch's (same parameters, names,
    initialisation and masks).

    ``forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False)`` returns ``(output, weights)``: output as ``query`` ((L, N, E), or
    (N, L, E) with ``batch_first``, or (L, E) unbatched); weights (N, L, S), per head (N, num_heads, L, S) without
    ``average_attn_weights``, None without ``need_weights``. Masks: ``key_padding_mask`` (N, S) and ``attn_mask``
    (L, S) or (N*num_heads, L, S), bool (True: not attended) or float (added to the scores). ``is_causal`` is a hint
    that ``attn_mask`` is causal, as in PyTorch: it needs ``attn_mask`` and changes nothing else.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device=None, dtype=None):
        super().__init__()
        e = self.embed_dim = integer(embed_dim, "embed_dim", _LAYER, minimum=1)
        self.num_heads = integer(num_heads, "num_heads", _LAYER, minimum=1)
        if e % self.num_heads:
            raise ValueError(f"{_LAYER}: embed_dim ({e}) must be divisible by num_heads ({self.num_heads})")
        self.head_dim = e // self.num_heads
        self.kdim = e if kdim is None else integer(kdim, "kdim", _LAYER, minimum=1)
        self.vdim = e if vdim is None else integer(vdim, "vdim", _LAYER, minimum=1)
        self._qkv_same_embed_dim = self.kdim == e and self.vdim == e
        self.dropout = number(dropout, "dropout", _LAYER, minimum=0.0, maximum=1.0)
        self.batch_first, self.add_zero_attn = batch_first, add_zero_attn
        kw = dict(dtype=dtype, device=device)
        packed = self._qkv_same_embed_dim  # one (3E, E) weight, as PyTorch, where keys and values have E features
        self.register_parameter("in_proj_weight", Parameter(creation.empty(3 * e, e, **kw)) if packed else None)
        for name, n in (("q_proj_weight", e), ("k_proj_weight", self.kdim), ("v_proj_weight", self.vdim)):
            self.register_parameter(name, None if packed else Parameter(creation.empty(e, n, **kw)))
        self.register_parameter("in_proj_bias", Parameter(creation.empty(3 * e, **kw)) if bias else None)
        self.out_proj = Linear(e, e, bias=bias, **kw)
        if add_bias_kv:
            self.bias_k, self.bias_v = (Parameter(creation.empty(1, 1, e, **kw)) for _ in range(2))
        else:
            self.bias_k = self.bias_v = None
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        for w in (self.in_proj_weight, self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
            if w is not None:
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        for b in (self.bias_k, self.bias_v):
            if b is not None:
                init.xavier_normal_(b)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Tensor | None = None,
                need_weights: bool = True, attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        self._check_inputs(query, key, value)
        if is_causal and attn_mask is None:
            raise RuntimeError(f"{_LAYER}: is_causal is a hint that attn_mask is causal; it needs attn_mask (a "
                               "causal one is True, or -inf, above the diagonal), as in PyTorch")
        batched = query.ndim == 3
        q, k, v = (self._to_batch_major(t, batched) for t in (query, key, value))
        if q.shape[0] != k.shape[0]:
            raise ShapeError(f"{_LAYER}: query {query.shape} and key {key.shape} have different batch sizes")
        if key_padding_mask is not None and not batched:
            tensor(key_padding_mask, "key_padding_mask", _LAYER)
            if key_padding_mask.ndim != 1:
                raise ShapeError(f"{_LAYER}: for an unbatched query, key_padding_mask must be 1-D (S,), got shape "
                                 f"{key_padding_mask.shape}")
            key_padding_mask = key_padding_mask.reshape(q.shape[0], -1)  # (1, S), or (T, S) for T tasks
        out, weights = self._attend(q, k, v, key_padding_mask, attn_mask, need_weights, average_attn_weights)
        out = self._from_batch_major(out, batched)
        if weights is not None and not batched:
            weights = weights.flatten(0, 1) if task_count() else weights.squeeze(0)
        return out, weights

    def _check_inputs(self, query, key, value) -> None:
        for name, t in (("query", query), ("key", key), ("value", value)):
            tensor(t, name, _LAYER)
        for name, t, n in (("query", query, self.embed_dim), ("key", key, self.kdim), ("value", value, self.vdim)):
            if t.ndim != query.ndim or t.ndim not in (2, 3):
                raise ShapeError(f"{_LAYER}: query, key and value must all be 3-D (batched) or 2-D (unbatched), got "
                                 f"shapes {query.shape}, {key.shape} and {value.shape}")
            if t.shape[-1] != n:
                raise ShapeError(f"{_LAYER}: {name} of shape {t.shape} must have {n} features (its last axis)")
        if key.shape[:-1] != value.shape[:-1]:
            raise ShapeError(f"{_LAYER}: key of shape {key.shape} and value of shape {value.shape} must agree on "
                             "every axis but the last")

    def _to_batch_major(self, x: Tensor, batched: bool) -> Tensor:
        """An input as (B, L, features); inside task_batch, B holds the tasks' batches one after another."""
        n = task_count()
        if not batched:  # (L, E): one sequence, or T of them one after another
            return x.unsqueeze(0) if not n else split_tasks(x, n, _LAYER)
        if self.batch_first:
            return x
        if not n:
            return x.transpose(0, 1)
        t = split_tasks(x, n, _LAYER)  # (T, L, N, E)
        return t.transpose(1, 2).flatten(0, 1)

    def _from_batch_major(self, y: Tensor, batched: bool) -> Tensor:
        """``_to_batch_major``'s inverse for the output."""
        n = task_count()
        if not batched:
            return y.squeeze(0) if not n else y.flatten(0, 1)
        if self.batch_first:
            return y
        if not n:
            return y.transpose(0, 1)
        return y.reshape(n, -1, *y.shape[1:]).transpose(1, 2).flatten(0, 1)  # (T, N, L, E) -> (T*L, N, E)

    def _projections(self) -> tuple:
        """(weight, bias) for queries, keys and values: rows of the packed ones, or the separate weights."""
        e, w, b = self.embed_dim, self.in_proj_weight, self.in_proj_bias
        rows = [slice(0, e), slice(e, 2 * e), slice(2 * e, 3 * e)]
        weights = [self.q_proj_weight, self.k_proj_weight, self.v_proj_weight] if w is None else \
            [w[..., r, :] for r in rows]
        return [(wi, None if b is None else b[..., r]) for wi, r in zip(weights, rows)]

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, key_padding_mask, attn_mask, need_weights: bool,
                average: bool) -> tuple[Tensor, Tensor | None]:
        """Attention over batch-major (B, L, E), (B, S, kdim), (B, S, vdim) inputs: (output (B, L, E), weights)."""
        (wq, bq), (wk, bk), (wv, bv) = self._projections()
        q, k, v = (task_linear(x, w, b, _LAYER) for x, w, b in ((q, wq, bq), (k, wk, bk), (v, wv, bv)))
        batch, length, source = q.shape[0], q.shape[1], k.shape[1]
        extra = 0  # key columns added after the inputs' (bias_k, a zero key), which every mask lets through
        if self.bias_k is not None and self.bias_v is not None:
            k, v = self._append(k, self.bias_k), self._append(v, self.bias_v)
            extra += 1
        h, d = self.num_heads, self.head_dim
        q, k, v = (x.reshape(batch, x.shape[1], h, d).transpose(1, 2) for x in (q, k, v))  # (B, H, len, D)
        if self.add_zero_attn:
            zeros = creation.zeros(batch, h, 1, d, dtype=k.dtype, device=k.device)
            k, v = cat([k, zeros], 2), cat([v, zeros], 2)
            extra += 1
        scores = matmul(q * math.sqrt(1.0 / d), k.transpose(-2, -1))  # (B, H, L, S + extra); q scaled as PyTorch
        mask = self._mask(key_padding_mask, attn_mask, batch, length, source, extra, scores.dtype)
        weights = softmax(scores if mask is None else scores + mask, -1)
        weights = F.dropout(weights, self.dropout, self.training)
        out = self.out_proj(matmul(weights, v).transpose(1, 2).reshape(batch, length, self.embed_dim))
        if not need_weights:
            return out, None
        return out, weights.mean(1) if average else weights

    def _append(self, x: Tensor, row: Tensor) -> Tensor:
        """(B, S, E) keys or values with ``row`` (1, 1, E), or (T, 1, 1, E) per task, appended to each sequence."""
        if task_count() and has_task_axis(row, 3, _LAYER):
            t = row.shape[0]
            row = row.expand(t, x.shape[0] // t, 1, x.shape[2]).flatten(0, 1)
        return cat([x, row.expand(x.shape[0], 1, x.shape[2])], 1)

    def _mask(self, key_padding_mask, attn_mask, batch: int, length: int, source: int, extra: int,
              dtype) -> Tensor | None:
        """The additive mask (broadcasting to (B, H, L, S + extra)), or None: bool masks as -inf where True."""
        masks = []
        if key_padding_mask is not None:
            m = _additive(key_padding_mask, "key_padding_mask", (batch, source), dtype)
            masks.append(m.reshape(batch, 1, 1, source))
        if attn_mask is not None:
            tensor(attn_mask, "attn_mask", _LAYER)
            heads = (batch * self.num_heads, length, source)
            if attn_mask.ndim == 3:
                m = _additive(attn_mask, "attn_mask", heads, dtype).reshape(batch, self.num_heads, length, source)
            else:
                m = _additive(attn_mask, "attn_mask", (length, source), dtype, f" or {heads}")
            masks.append(m)
        if not masks:
            return None
        mask = masks[0] if len(masks) == 1 else masks[0] + masks[1]
        return F.pad(mask, (0, extra)) if extra else mask

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
                f"batch_first={self.batch_first}")


def _additive(mask, name: str, shape: tuple, dtype, alternative: str = "") -> Tensor:
    """A bool mask (True: not attended) as -inf and 0 of ``dtype``, a float one as it is; of ``shape``."""
    tensor(mask, name, _LAYER)
    if tuple(mask.shape) != shape:
        raise ShapeError(f"{_LAYER}: {name} must have shape {shape}{alternative}, got {mask.shape}")
    kind = mask._data.dtype.kind
    if kind == "b":
        return where(mask, -math.inf, 0.0).to(dtype)
    if kind != "f":
        raise DTypeError(f"{_LAYER}: {name} must be a bool or float tensor, got {mask.dtype}")
    return mask
