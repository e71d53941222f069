"""Matmul and linear: stacks of small products (one per task) in one C call, and the fused task-batched
linear layer with its gradient; single or large products go to BLAS (C side: csrc/linalg.h)."""

from __future__ import annotations

import numpy as np

from neurenix.backend import REQUIRED, compose

from .elementwise import add
from .native import NULL, NUMPY, SUFFIX, c_ready, fns, ndarray, ptr
from .reductions import reduce_sum

# When C's batched product beats BLAS (bench/cpu_kernels.py, docs/benchmarks.md), by work m*n*k per product:
BMM_MAX_WORK = 4096      # of at least 8 columns: up to it, C wins whatever the layout
BMM_MAX_TILED = 1 << 20  # up to it, C's register tiles win on stacks of distinct products (one per task) with
                         # B row-major (not a transposed view) and 16 columns or more; BLAS wins the others
LINEAR_MAX_WORK = 1 << 16  # rows * in * out per task, up to which the fused C layer beats matmul + bias add
BMM_BROADCAST_MAX_K = 9  # one matrix times a stack of row-major ones with k up to it (a 3x3 conv's weight over one
                         # channel times per-image columns: Conv-4's first layer, 64x9 @ 100x9x784): C's tiles take
                         # 0.73 of NumPy's loop of BLAS calls; from k = 16 BLAS wins (bench in the commit message)
# A stack times a stack of transposed views with few columns and long rows (a conv's weight gradient over
# per-image columns: Conv-4's first layer, 100 x (64x784 @ (9x784)^T)): C's products along k take 0.70 of
# NumPy's time; with 16 or 27 columns they tie, and with rows of 196 BLAS wins
BMM_NT_MAX_N, BMM_NT_MIN_K = 9, 512

_bmm, _bmm_nt, _linear, _linear_bw = fns("bmm"), fns("bmm_nt"), fns("linear"), fns("linear_backward")


def _operand(x):
    """``(array C reads, transposed?)``: a C-contiguous matrix stack, or one whose last two axes are
    swapped (a transposed view, read in place), else a contiguous copy."""
    if x.flags.c_contiguous:
        return x, 0
    t = x.swapaxes(-1, -2)
    if t.flags.c_contiguous:
        return t, 1
    return np.ascontiguousarray(x), 0


def _stack3(x):
    """``x`` (..., m, k) as one stack (s, m, k) of its matrices, a view where NumPy can make one; a single
    matrix (all leading sizes 1) as (m, k)."""
    if all(d == 1 for d in x.shape[:-2]):
        return x[(0,) * (x.ndim - 2)]
    return x.reshape(-1, *x.shape[-2:])


def matmul(a, b):
    """Stacks of small products (one per task, say) in one C call; single or large products go to BLAS."""
    if type(a) is ndarray and type(b) is ndarray and a.ndim == b.ndim > 3 and a.dtype is b.dtype and \
            a.dtype in SUFFIX and a.size and b.size:
        # stacks with more axes (conv2d's per-task products, (T, 1, G, O, K) @ (T, N/T, G, K, L), at T = G = 1:
        # a task at a time) as 3-D ones, where the leading axes match or one side's are all 1
        la, lb = a.shape[:-2], b.shape[:-2]
        if la == lb or all(d == 1 for d in la) or all(d == 1 for d in lb):
            out = matmul(_stack3(a), _stack3(b))
            return out.reshape(*(lb if all(d == 1 for d in la) else la), *out.shape[-2:])
    if type(a) is ndarray and type(b) is ndarray and a.dtype is b.dtype and a.dtype in SUFFIX:
        sa, sb = a.shape, b.shape
        if (len(sa) == 3 or len(sb) == 3) and len(sa) <= 3 and len(sb) <= 3:
            m, k, n = sa[-2], sa[-1], sb[-1]
            ba, bb = sa[0] if len(sa) == 3 else 1, sb[0] if len(sb) == 3 else 1
            work = m * n * k
            if work and ba == bb > 1 and n <= BMM_NT_MAX_N and k >= BMM_NT_MIN_K and a.flags.c_contiguous:
                bt = b.swapaxes(-1, -2)
                if bt.flags.c_contiguous:  # b is a transposed view: its rows along k as stored
                    out = np.empty((ba, m, n), a.dtype)
                    _bmm_nt[a.dtype](ptr(a), ptr(bt), ptr(out), ba, m, n, k, m * k, n * k)
                    return out
            if work and n >= 8 and (ba == bb or ba == 1 or bb == 1) and max(ba, bb) > 1 and (work <= BMM_MAX_WORK or (
                    work <= BMM_MAX_TILED and n >= 16 and b.flags.c_contiguous and (
                        ba == bb or (ba == 1 and k <= BMM_BROADCAST_MAX_K)))):
                ac, ta = _operand(a)
                bc, tb = _operand(b)
                out = np.empty((ba if ba != 1 else bb, m, n), a.dtype)
                _bmm[a.dtype](ptr(ac), ptr(bc), ptr(out), out.shape[0], m, n, k, m * k if ba != 1 else 0,
                              k * n if bb != 1 else 0, ta, tb)
                return out
    return NUMPY.matmul(a, b)


# linear and its gradient composed over the C matmul, sum and add (core's compositions), for a weight per task
# that the fused C kernels do not take; a single weight goes to NumPy's (BLAS)
_COMPOSED = compose({**{name: getattr(NUMPY, name) for name in REQUIRED}, "matmul": matmul, "sum": reduce_sum,
                     "add": add})


def _task_stack(x, w):
    """``(tasks, n, in, out)`` when ``x`` (tasks, n, in) and ``w`` (tasks, out, in) are C-contiguous float
    arrays of one dtype, small enough for the fused C kernels, else None."""
    if type(x) is not ndarray or type(w) is not ndarray or x.ndim != 3 or w.ndim != 3:
        return None
    (t, n, ni), (tw, no, niw) = x.shape, w.shape
    if t != tw or ni != niw or not 0 < n * ni * no <= LINEAR_MAX_WORK or not c_ready(x, w):
        return None
    return t, n, ni, no


def linear(x, w, b):
    """``x @ w^T + b`` in one C call for the task-batched layers of meta-learning (one weight per task)."""
    dims = _task_stack(x, w)
    if dims is not None and (b is None or (type(b) is ndarray and b.dtype is x.dtype and b.flags.c_contiguous)):
        t, n, ni, no = dims
        out = np.empty((t, n, no), x.dtype)
        _linear[x.dtype](ptr(x), ptr(w), NULL if b is None else ptr(b), ptr(out), t, n, ni, no, n * ni, no * ni, no)
        return out
    return (NUMPY if w.ndim == 2 else _COMPOSED).linear(x, w, b)


def linear_backward(g, x, w, needs):
    dims = _task_stack(x, w)
    if dims is not None and type(g) is ndarray and g.dtype is x.dtype and g.flags.c_contiguous and \
            g.shape == (dims[0], dims[1], dims[3]):
        t, n, ni, no = dims
        gx, gw, gb = (np.empty(shape, x.dtype) if need else None
                      for need, shape in zip(needs, ((t, n, ni), (t, no, ni), (t, no))))
        _linear_bw[x.dtype](ptr(g), ptr(x), ptr(w), *(NULL if a is None else ptr(a) for a in (gx, gw, gb)), t, n, ni,
                            no, n * ni, no * ni)
        return gx, gw, gb
    return (NUMPY if w.ndim == 2 else _COMPOSED).linear_backward(g, x, w, needs)
