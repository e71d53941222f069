"""Normalisation: batch normalisation (training mode, per channel, per group of rows) and its gradient, in
five passes over the data where core's composition makes about seventeen (C side: csrc/norm.h)."""

from __future__ import annotations

import numpy as np

from .native import NUMPY, c_ready, fns, ndarray, optional_ptr, ptr

_bn, _bn_bw = fns("batch_norm"), fns("batch_norm_backward")


def _bn_layout(x, groups, *params):
    """``(groups, rows per group, C, R, parameter stride)`` when x (N, C, ...) and the parameters (None,
    (C,) or (groups, C)) are C-contiguous floats of one dtype that the C kernels take, else None."""
    if type(x) is not ndarray or x.ndim < 2 or not x.size or x.shape[0] % groups or not c_ready(x):
        return None
    c = x.shape[1]
    ps = set()
    for p in params:
        if p is None:
            continue
        if type(p) is not ndarray or p.dtype is not x.dtype or not p.flags.c_contiguous or \
                p.shape not in ((c,), (groups, c)):
            return None
        ps.add(c if p.ndim == 2 else 0)
    if len(ps) > 1:
        return None
    return groups, x.shape[0] // groups, c, x.size // (x.shape[0] * c), ps.pop() if ps else 0


def batch_norm(x, weight, bias, groups, eps):
    lay = _bn_layout(x, groups, weight, bias)
    if lay is None:
        return NUMPY.batch_norm(x, weight, bias, groups, eps)
    y, mean, var = np.empty(x.shape, x.dtype), np.empty((groups, lay[2]), x.dtype), np.empty((groups, lay[2]), x.dtype)
    _bn[x.dtype](ptr(x), optional_ptr(weight), optional_ptr(bias), ptr(y), ptr(mean), ptr(var), *lay, eps)
    return y, mean, var


def batch_norm_backward(g, x, mean, var, weight, groups, eps, needs):
    lay = _bn_layout(x, groups, weight)
    if lay is None or type(g) is not ndarray or g.shape != x.shape or not c_ready(g, x, mean, var) or \
            mean.shape != (groups, lay[2]) or var.shape != mean.shape:
        return NUMPY.batch_norm_backward(g, x, mean, var, weight, groups, eps, needs)
    outs = [np.empty(shape, x.dtype) if need else None for need, shape in zip(needs, (x.shape, mean.shape, mean.shape))]
    _bn_bw[x.dtype](ptr(g), ptr(x), ptr(mean), ptr(var), optional_ptr(weight), *(optional_ptr(o) for o in outs),
                    *lay, eps)
    return tuple(outs)


_bnp, _bnp_bw = fns("batch_norm_relu_pool"), fns("batch_norm_relu_pool_backward")
#: the widest image rows the fused kernels take (csrc/norm.h's BNP_BLOCK: a block of row pairs is on the stack)
MAX_WIDTH = 1024


def _bnp_fits(x, lay) -> bool:
    return lay is not None and x.ndim == 4 and min(x.shape[2:]) >= 2 and x.shape[3] <= MAX_WIDTH


def batch_norm_relu_pool(x, weight, bias, groups, eps):
    lay = _bn_layout(x, groups, weight, bias)
    if not _bnp_fits(x, lay):
        return NUMPY.batch_norm_relu_pool(x, weight, bias, groups, eps)
    (n, c, h, w), (g, nr, _, _, ps) = x.shape, lay
    y, mean, var = np.empty((n, c, h // 2, w // 2), x.dtype), np.empty((g, c), x.dtype), np.empty((g, c), x.dtype)
    _bnp[x.dtype](ptr(x), optional_ptr(weight), optional_ptr(bias), ptr(y), ptr(mean), ptr(var), g, nr, c, h, w, ps,
                  eps)
    return y, mean, var


def batch_norm_relu_pool_backward(g, x, mean, var, weight, bias, groups, eps, needs):
    lay = _bn_layout(x, groups, weight, bias)
    if not _bnp_fits(x, lay) or type(g) is not ndarray or \
            g.shape != (*x.shape[:2], x.shape[2] // 2, x.shape[3] // 2) or not c_ready(g, x, mean, var) or \
            mean.shape != (groups, lay[2]) or var.shape != mean.shape:
        return NUMPY.batch_norm_relu_pool_backward(g, x, mean, var, weight, bias, groups, eps, needs)
    (_, c, h, w), (gs, nr, _, _, ps) = x.shape, lay
    outs = [np.empty(shape, x.dtype) if need else None for need, shape in zip(needs, (x.shape, mean.shape, mean.shape))]
    if _bnp_bw[x.dtype](ptr(g), ptr(x), ptr(mean), ptr(var), optional_ptr(weight), optional_ptr(bias),
                        *(optional_ptr(o) for o in outs), gs, nr, c, h, w, ps, eps):
        raise MemoryError(f"batch_norm_relu_pool_backward: no memory for the windows of an input of {x.shape}")
    return tuple(outs)
