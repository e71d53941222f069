"""Reductions: sum, max, min and mean over axes, for the patterns C covers (C side: csrc/reductions.h)."""

from __future__ import annotations

import numpy as np

from neurenix.caches import remember

from .native import NUMPY, SUFFIX, c_ready, fns, ndarray, ptr

#: below this many elements NumPy's reduction wins (measured with bench/cpu_kernels.py)
MIN_REDUCE = 4096
#: max/min of contiguous rows: C splits a row this long over the threads (a whole tensor of 36 MB: 0.7 ms against
#: NumPy's 1.1 on two threads); NumPy's vector loops win shorter rows (200 KB: 4 us against C's 200 column by column)
LONG_ROW = 65536

_reduce_mid, _reduce_outer = fns("reduce_mid"), fns("reduce_outer")
_reduce_plans: dict = {}


def _reduce_plan(shape: tuple, axes: tuple):
    """``("mid", a, r, b)`` (reduce the middle of (a, r, b)), ``("outer", r1, k, r2)`` (keep the middle),
    or None for patterns C does not cover."""
    key = (shape, axes)
    plan = _reduce_plans.get(key, False)
    if plan is not False:
        return plan
    groups: list = []  # runs of (reduced?, size), size-1 axes dropped
    for i, s in enumerate(shape):
        if s == 1:
            continue
        red = i in axes
        if groups and groups[-1][0] == red:
            groups[-1][1] *= s
        else:
            groups.append([red, s])
    labels = tuple(g[0] for g in groups)
    sizes = [g[1] for g in groups] or [1]  # (an all-ones shape has no runs: below, every entry is evaluated)
    plan = {(): ("mid", 1, 1, 1), (True,): ("mid", 1, sizes[0], 1), (False,): ("mid", sizes[0], 1, 1),
            (False, True): ("mid", sizes[0], sizes[1], 1) if len(sizes) == 2 else None,
            (True, False): ("mid", 1, sizes[0], sizes[-1]) if len(sizes) == 2 else None,
            (False, True, False): ("mid", *sizes) if len(sizes) == 3 else None,
            (True, False, True): ("outer", *sizes) if len(sizes) == 3 else None}.get(labels)
    return remember(_reduce_plans, key, plan)


def _out_shape(shape, axes, keepdim):
    if keepdim:
        return tuple(1 if i in axes else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in axes)


def _reduction(op: int, fallback):
    """The kernel of C reduction ``op`` (0 sum, 1 max, 2 min), ``fallback`` where C does not apply."""
    def kernel(x, axes, keepdim):
        if type(x) is ndarray and x.size >= MIN_REDUCE and c_ready(x):
            plan = _reduce_plan(x.shape, axes)
            if plan is not None and op and plan[3] == 1 and not (plan[2] >= LONG_ROW and plan[1] < 64):
                plan = None  # max/min along the last axis: NumPy's vector loops win, but on long rows (threads)
            if plan is not None:
                out = np.empty(_out_shape(x.shape, axes, keepdim), x.dtype)
                (_reduce_mid if plan[0] == "mid" else _reduce_outer)[x.dtype](op, ptr(x), ptr(out), *plan[1:])
                return out
        return fallback(x, axes, keepdim)
    return kernel


reduce_sum, reduce_max, reduce_min = _reduction(0, NUMPY.sum), _reduction(1, NUMPY.max), _reduction(2, NUMPY.min)


def mean(x, axes, keepdim):
    if type(x) is not ndarray or x.size < MIN_REDUCE:
        return NUMPY.mean(x, axes, keepdim)
    out = reduce_sum(x, axes, keepdim)
    n = 1
    for a in axes:
        n *= x.shape[a]
    if type(out) is ndarray and out.dtype in SUFFIX and out.ndim:
        return np.true_divide(out, n, out=out)
    return np.true_divide(out, n)
