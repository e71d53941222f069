"""Softmax and losses: exp, softmax and log_softmax over the last axis, cross entropy, and their gradients,
on blocks of rows with a vectorised exp (C side: csrc/softmax.h)."""

from __future__ import annotations

import numpy as np

from .native import NUMPY, c_ready, fns, ndarray, ptr

#: NumPy's exp is vectorised too: below this many elements its lower call cost wins (bench/cpu_kernels.py)
MIN_EXP = 32768

_exp, _softmax_rows, _softmax_rows_bw = fns("exp"), fns("softmax_rows"), fns("softmax_rows_backward")
_xent, _xent_bw = fns("cross_entropy"), fns("cross_entropy_backward")


def exp(x):
    if type(x) is ndarray and x.size >= MIN_EXP and c_ready(x):
        out = np.empty(x.shape, x.dtype)
        _exp[x.dtype](ptr(x), ptr(out), x.size)
        return out
    return NUMPY.exp(x)


def _rows(x, axis):
    """``(rows, classes)`` when the normalised axis of ``x`` is its last and C can read it, else None."""
    if type(x) is ndarray and x.ndim and axis == x.ndim - 1 and x.size and c_ready(x):
        c = x.shape[-1]
        return x.size // c, c
    return None


def _softmax_kernel(mode: int, fallback):
    """softmax (mode 0) or log_softmax (mode 1) of rows in C, ``fallback`` for any other axis."""
    def kernel(x, axis):
        rc = _rows(x, axis)
        if rc is None:
            return fallback(x, axis)
        out = np.empty(x.shape, x.dtype)
        _softmax_rows[x.dtype](mode, ptr(x), ptr(out), *rc)
        return out
    return kernel


def _softmax_backward_kernel(mode: int, fallback):
    def kernel(g, y, axis):
        rc = _rows(y, axis)
        if rc is None or g.shape != y.shape or not c_ready(g, y):
            return fallback(g, y, axis)
        out = np.empty(y.shape, y.dtype)
        _softmax_rows_bw[y.dtype](mode, ptr(g), ptr(y), ptr(out), *rc)
        return out
    return kernel


softmax, log_softmax = _softmax_kernel(0, NUMPY.softmax), _softmax_kernel(1, NUMPY.log_softmax)
softmax_backward = _softmax_backward_kernel(0, NUMPY.softmax_backward)
log_softmax_backward = _softmax_backward_kernel(1, NUMPY.log_softmax_backward)


def cross_entropy(x, probs):
    if type(x) is ndarray and x.ndim == 2 and x.size and type(probs) is ndarray and probs.shape == x.shape \
            and c_ready(x, probs):
        n, c = x.shape
        loss, sm = np.empty(n, x.dtype), np.empty(x.shape, x.dtype)
        _xent[x.dtype](ptr(x), ptr(probs), ptr(loss), ptr(sm), n, c)
        return loss, sm
    return NUMPY.cross_entropy(x, probs)


def cross_entropy_backward(g, sm, probs):
    if type(g) is ndarray and type(sm) is ndarray and sm.ndim == 2 and sm.size and g.shape == sm.shape[:1] \
            and type(probs) is ndarray and probs.shape == sm.shape and c_ready(g, sm, probs):
        out = np.empty(sm.shape, sm.dtype)
        _xent_bw[sm.dtype](ptr(g), ptr(sm), ptr(probs), ptr(out), *sm.shape)
        return out
    return NUMPY.cross_entropy_backward(g, sm, probs)
