"""Windows and pools: unfold and fold (im2col, col2im; one image after another, or all side by side),
2-D max pooling and its gradient (C side: csrc/windows.h)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from neurenix.backend.kernels import out_size, window_blocks

from .native import I64, NUMPY, SUFFIX, fns, ndarray, ptr

_unfold, _fold, _max_pool, _max_pool_bw = fns("unfold"), fns("fold"), fns("max_pool2d"), fns("max_pool2d_backward")


class Geometry(NamedTuple):
    """A window op's sizes, in the order the C kernels take them: images (n, c, h, w), kernel (kh, kw),
    stride, padding, dilation, and the output's (oh, ow)."""

    n: int
    c: int
    h: int
    w: int
    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int
    dh: int
    dw: int
    oh: int
    ow: int

    @property
    def blocks(self) -> int:
        """Windows per image (L): columns of unfold's output."""
        return self.oh * self.ow


def geometry(n, c, h, w, kernel_size, stride, padding, dilation) -> Geometry:
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    oh, ow = out_size(h, kh, sh, ph, dh), out_size(w, kw, sw, pw, dw)
    # tuple.__new__, as NamedTuple._make does: Geometry(...) would run one more Python function per window op
    return tuple.__new__(Geometry, (n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow))


def _contiguous_float(x):
    """``x`` as a C-contiguous array, or None if it is not a float array C handles."""
    if type(x) is not ndarray or x.dtype not in SUFFIX:
        return None
    return x if x.flags.c_contiguous else np.ascontiguousarray(x)


def _unfold_into(x, kernel_size, stride, padding, dilation, batch_side_by_side: bool):
    """unfold's (N, K, L), or with ``batch_side_by_side`` unfold_batch's (K, N*L); None where C does not apply."""
    xc = _contiguous_float(x)
    if xc is None or xc.size == 0:
        return None
    g = geometry(*xc.shape, kernel_size, stride, padding, dilation)
    rows, blocks = g.c * g.kh * g.kw, g.blocks
    if batch_side_by_side:
        out, strides = np.empty((rows, g.n * blocks), xc.dtype), (blocks, g.n * blocks)
    else:
        out, strides = np.empty((g.n, rows, blocks), xc.dtype), (rows * blocks, blocks)
    _unfold[xc.dtype](ptr(xc), ptr(out), *strides, *g)
    return out


def _fold_from(cols, n, output_size, kernel_size, stride, padding, dilation, batch_side_by_side: bool):
    """The adjoint of :func:`_unfold_into` for ``n`` images; None where C does not apply."""
    cc = _contiguous_float(cols)
    if cc is None or cc.size == 0:
        return None
    rows = cc.shape[1] if not batch_side_by_side else cc.shape[0]
    g = geometry(n, rows // (kernel_size[0] * kernel_size[1]), *output_size, kernel_size, stride, padding, dilation)
    blocks = g.blocks
    strides = (blocks, n * blocks) if batch_side_by_side else (rows * blocks, blocks)
    out = np.empty((g.n, g.c, g.h, g.w), cc.dtype)
    _fold[cc.dtype](ptr(cc), ptr(out), *strides, *g)
    return out


def unfold(x, kernel_size, stride, padding, dilation):
    out = _unfold_into(x, kernel_size, stride, padding, dilation, False)
    return NUMPY.unfold(x, kernel_size, stride, padding, dilation) if out is None else out


def fold(cols, output_size, kernel_size, stride, padding, dilation):
    out = _fold_from(cols, cols.shape[0], output_size, kernel_size, stride, padding, dilation, False)
    return NUMPY.fold(cols, output_size, kernel_size, stride, padding, dilation) if out is None else out


def unfold_batch(x, kernel_size, stride, padding, dilation):
    out = _unfold_into(x, kernel_size, stride, padding, dilation, True)
    return NUMPY.unfold_batch(x, kernel_size, stride, padding, dilation) if out is None else out


def fold_batch(cols, output_size, kernel_size, stride, padding, dilation):
    blocks = window_blocks(output_size, kernel_size, stride, padding, dilation)
    out = _fold_from(cols, cols.shape[1] // blocks, output_size, kernel_size, stride, padding, dilation, True)
    return NUMPY.fold_batch(cols, output_size, kernel_size, stride, padding, dilation) if out is None else out


def max_pool2d(x, kernel_size, stride, padding, dilation):
    xc = _contiguous_float(x)
    if xc is None or xc.size == 0:
        return NUMPY.max_pool2d(x, kernel_size, stride, padding, dilation)
    g = geometry(*xc.shape, kernel_size, stride, padding, dilation)
    out = np.empty((g.n, g.c, g.oh, g.ow), xc.dtype)
    idx = np.empty(out.shape, I64)
    _max_pool[xc.dtype](ptr(xc), ptr(out), ptr(idx), *g)
    return out, idx


def max_pool2d_backward(g, indices, input_size, kernel_size, stride, padding, dilation):
    gc = _contiguous_float(g)
    if gc is None or gc.size == 0 or type(indices) is not ndarray or indices.dtype is not I64 \
            or indices.shape != gc.shape:
        return NUMPY.max_pool2d_backward(g, indices, input_size, kernel_size, stride, padding, dilation)
    ic = np.ascontiguousarray(indices)
    n, c = gc.shape[:2]
    out = np.empty((n, c, *input_size), gc.dtype)
    _max_pool_bw[gc.dtype](ptr(gc), ptr(ic), ptr(out), *geometry(n, c, *input_size, kernel_size, stride, padding,
                                                                  dilation))
    return out
