"""Elementwise kernels: broadcasting binary arithmetic (add, sub, mul, div, maximum, minimum), relu and
its gradient (C side: csrc/elementwise.h)."""

from __future__ import annotations

import numpy as np

from neurenix.caches import remember

from . import native
from .native import NUMPY, SUFFIX, c_ready, fns, ndarray, ptr

# When C beats NumPy, measured with bench/cpu_kernels.py (docs/benchmarks.md): below these sizes NumPy's own
# loops win, since calling C costs about a microsecond more than calling a ufunc.
MIN_ELEMENTWISE = 65536  # same-shape or scalar operands: C is only faster with several threads
MIN_BROADCAST = 16384    # broadcast patterns (bias, per-channel): NumPy's strided loops are slow

_plans: dict = {}


def _broadcast_plan(sa: tuple, sb: tuple):
    """``(out_shape, (d0, d1, d2), a_strides, b_strides)`` for C, or None when the broadcast needs more
    than three collapsed axes (then NumPy runs it)."""
    key = (sa, sb)
    plan = _plans.get(key, False)  # one lookup: another thread may clear the cache between two
    if plan is not False:
        return plan
    n = max(len(sa), len(sb))
    pa, pb = (1,) * (n - len(sa)) + sa, (1,) * (n - len(sb)) + sb
    out = tuple(x if y == 1 else y for x, y in zip(pa, pb))

    def strides(p):
        st, acc = [0] * n, 1
        for i in range(n - 1, -1, -1):
            st[i] = acc if p[i] != 1 else 0
            acc *= p[i]
        return st

    st_a, st_b = strides(pa), strides(pb)
    axes = [(out[i], st_a[i], st_b[i]) for i in range(n) if out[i] != 1]
    merged: list = []
    for d, x, y in axes:  # merge an axis into the previous one where both operands continue contiguously
        if merged and merged[-1][1] == x * d and merged[-1][2] == y * d:
            pd, _, _ = merged[-1]
            merged[-1] = (pd * d, x, y)
        else:
            merged.append((d, x, y))
    plan = None
    if len(merged) <= 3:
        merged = [(1, 0, 0)] * (3 - len(merged)) + merged
        plan = (out, tuple(m[0] for m in merged), tuple(m[1] for m in merged), tuple(m[2] for m in merged))
    return remember(_plans, key, plan)


def _binary(name: str):
    ufunc, c_fns, c_scalar_fns = getattr(NUMPY, name), fns(name), fns(f"{name}_scalar")

    def kernel(a, b):
        # sizes first: most calls in training are small and go straight to the ufunc, so that path must
        # cost as little as possible on top of it
        ta, tb = type(a), type(b)
        if ta is ndarray and tb is ndarray:
            sa, sb = a.shape, b.shape
            if sa == sb:
                if native.threads == 1 or a.size < MIN_ELEMENTWISE:
                    return ufunc(a, b)
            elif (a.size if a.size > b.size else b.size) < MIN_BROADCAST:
                return ufunc(a, b)
            if a.dtype in SUFFIX and a.dtype is b.dtype and a.flags.c_contiguous and b.flags.c_contiguous:
                plan = _broadcast_plan(sa, sb)
                if plan is not None:
                    shape, (d0, d1, d2), (a0, a1, a2), (b0, b1, b2) = plan
                    out = np.empty(shape, a.dtype)
                    c_fns[a.dtype](ptr(a), ptr(b), ptr(out), d0, d1, d2, a0, a1, a2, b0, b1, b2)
                    return out
        elif native.threads > 1 and ((ta is ndarray and (tb is float or tb is int)) or
                                     (tb is ndarray and (ta is float or ta is int))):
            x, s, s_first = (a, b, 0) if ta is ndarray else (b, a, 1)
            if x.size >= MIN_ELEMENTWISE and x.dtype in SUFFIX and x.flags.c_contiguous:
                out = np.empty(x.shape, x.dtype)
                c_scalar_fns[x.dtype](ptr(x), s, ptr(out), x.size, s_first)
                return out
        return ufunc(a, b)

    kernel.__name__ = kernel.__qualname__ = name
    return kernel


add, sub, mul, div = _binary("add"), _binary("sub"), _binary("mul"), _binary("div")
maximum, minimum = _binary("maximum"), _binary("minimum")

_relu, _relu_backward, _where = fns("relu"), fns("relu_backward"), fns("where")
_BOOL = np.dtype(np.bool_)
MIN_WHERE = 4096  # below it NumPy's where is as fast (a C call costs about a microsecond more)


def relu(x):
    """C at every size: NumPy's maximum(x, 0) costs twice as much, even on small arrays."""
    if c_ready(x):
        out = np.empty(x.shape, x.dtype)
        _relu[x.dtype](ptr(x), ptr(out), x.size)
        return out
    return NUMPY.relu(x)


def relu_backward(g, x):
    if g.shape == x.shape and c_ready(g, x):
        out = np.empty(g.shape, g.dtype)
        _relu_backward[g.dtype](ptr(g), ptr(x), ptr(out), g.size)
        return out
    return NUMPY.relu_backward(g, x)


def where(cond, a, b):
    """C for a select between same-shape contiguous float arrays or numbers (a LeakyReLU, its gradient): NumPy's
    where runs at a seventh of a multiply's speed there. Broadcasts and other dtypes: NumPy's."""
    ta, tb = type(a) is ndarray, type(b) is ndarray
    if type(cond) is ndarray and cond.dtype is _BOOL and cond.size >= MIN_WHERE and cond.flags.c_contiguous \
            and (ta or tb):
        dt = a.dtype if ta else b.dtype
        if dt in SUFFIX and all(x.shape == cond.shape and x.dtype is dt and x.flags.c_contiguous
                                for x in (a, b) if type(x) is ndarray) \
                and all(type(x) in (float, int) for x in (a, b) if type(x) is not ndarray):
            out = np.empty(cond.shape, dt)
            _where[dt](ptr(cond), ptr(a) if ta else native.NULL, ptr(b) if tb else native.NULL, ptr(out), cond.size,
                       (0 if ta else 1) | (0 if tb else 2), 0.0 if ta else float(a), 0.0 if tb else float(b))
            return out
    return NUMPY.where(cond, a, b)
