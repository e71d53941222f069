"""Resizing images: ``interpolate`` (nearest, bilinear) and ``adaptive_avg_pool2d``.

Each axis is resampled on its own: nearest picks rows with ``index_select``; bilinear interpolation and
adaptive average pooling multiply by a small (out, in) weight matrix, built on the host from the sizes
alone, on either side (``Wh @ x @ Ww^T``). Both are differentiable to any order.
"""

from __future__ import annotations

import math

import numpy as np

from ..arguments import choice, integer, number
from ..errors import ShapeError
from ..ops import expect_tensor as _tensor
from ..ops import index_select, matmul
from ..tensor import Tensor, tensor


def _image(input: Tensor, op: str) -> Tensor:
    _tensor(input, "input", op)
    if input.ndim != 4:
        raise ShapeError(f"{op}: expects an (N, C, H, W) input, got shape {input.shape}")
    if not input.is_floating_point():
        raise TypeError(f"{op}: expects a float input, got {input.dtype}")
    if 0 in input.shape[2:]:
        raise ShapeError(f"{op}: expects non-empty H and W (an empty batch or channel axis is fine), got shape "
                         f"{input.shape}")
    return input


def _pair(v, name: str, op: str, kind) -> tuple:
    items = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(items) != 2:
        raise ValueError(f"{op}: {name} must be one value or two (for H and W), got {v!r}")
    return tuple(kind(i, name, op) for i in items)


def _out_sizes(x: Tensor, size, scale_factor, op: str) -> tuple[tuple, tuple]:
    """Output (H, W) and the scale per axis (in/out, or 1/scale_factor as PyTorch uses when it is given)."""
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: give exactly one of size and scale_factor")
    ins = x.shape[2:]
    if size is not None:
        outs = _pair(size, "size", op, lambda v, n, o: integer(v, n, o, minimum=1))
        return outs, tuple(i / o for i, o in zip(ins, outs))
    factors = _pair(scale_factor, "scale_factor", op, lambda v, n, o: number(v, n, o, above=0.0))
    outs = tuple(math.floor(i * f) for i, f in zip(ins, factors))
    if min(outs) < 1:
        raise ValueError(f"{op}: scale_factor {scale_factor} leaves no pixel of an input of size {ins}")
    return outs, tuple(1 / f for f in factors)


def _nearest_index(n_in: int, n_out: int, scale: float) -> np.ndarray:
    return np.minimum(np.floor(np.arange(n_out) * scale).astype(np.int64), n_in - 1)


def _linear_weights(n_in: int, n_out: int, scale: float, align_corners: bool) -> np.ndarray:
    """The (out, in) matrix of 1-D linear interpolation, with PyTorch's source coordinates."""
    dst = np.arange(n_out, dtype=np.float64)
    if align_corners:
        src = dst * ((n_in - 1) / (n_out - 1)) if n_out > 1 else dst * 0
    else:
        src = np.maximum((dst + 0.5) * scale - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    w = np.zeros((n_out, n_in))
    np.add.at(w, (np.arange(n_out), lo), 1 - frac)
    np.add.at(w, (np.arange(n_out), hi), frac)
    return w


def _resample(x: Tensor, wh: np.ndarray, ww: np.ndarray) -> Tensor:
    """``wh @ x @ ww^T`` over the last two axes, with the weights in x's dtype and on its device."""
    left = tensor(wh, dtype=x.dtype, device=x.device)
    right = tensor(np.ascontiguousarray(ww.T), dtype=x.dtype, device=x.device)
    return matmul(matmul(left, x), right)


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool | None = None,
                recompute_scale_factor: bool | None = None, antialias: bool = False) -> Tensor:
    """Resize an (N, C, H, W) ``input`` to ``size`` or by ``scale_factor``: mode 'nearest' or 'bilinear'
    (``align_corners`` as PyTorch, False by default). ``recompute_scale_factor=True`` uses in/out as the scale."""
    x = _image(input, "interpolate")
    mode = choice(mode, "mode", "interpolate", ("nearest", "bilinear"))
    if antialias:
        raise ValueError("interpolate: antialias is not supported")
    if align_corners is not None and mode == "nearest":
        raise ValueError("interpolate: align_corners only applies to mode 'bilinear'")
    outs, scales = _out_sizes(x, size, scale_factor, "interpolate")
    if recompute_scale_factor:
        scales = tuple(i / o for i, o in zip(x.shape[2:], outs))
    if mode == "nearest":
        for axis, (n_in, n_out, s) in enumerate(zip(x.shape[2:], outs, scales), start=2):
            x = index_select(x, axis, tensor(_nearest_index(n_in, n_out, s), device=x.device))
        return x
    wh, ww = (_linear_weights(i, o, s, bool(align_corners)) for i, o, s in zip(x.shape[2:], outs, scales))
    return _resample(x, wh, ww)


def _bins(n_in: int, n_out: int) -> np.ndarray:
    """The (out, in) averaging matrix of adaptive pooling: bin i covers [floor(i*in/out), ceil((i+1)*in/out))."""
    w = np.zeros((n_out, n_in))
    for i in range(n_out):
        lo, hi = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
        w[i, lo:hi] = 1.0 / (hi - lo)
    return w


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average pooling of an (N, C, H, W) or (C, H, W) ``input`` to ``output_size`` (None keeps that axis)."""
    _tensor(input, "input", "adaptive_avg_pool2d")
    if input.ndim not in (3, 4):
        raise ShapeError(f"adaptive_avg_pool2d: expects an (N, C, H, W) or (C, H, W) input, got {input.shape}")
    x = _image(input if input.ndim == 4 else input.unsqueeze(0), "adaptive_avg_pool2d")
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    if len(sizes) != 2:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be one size or two, got {output_size!r}")
    outs = tuple(n if s is None else integer(s, "output_size", "adaptive_avg_pool2d", minimum=1)
                 for s, n in zip(sizes, x.shape[2:]))
    out = _resample(x, _bins(x.shape[2], outs[0]), _bins(x.shape[3], outs[1]))
    return out if input.ndim == 4 else out.squeeze(0)
