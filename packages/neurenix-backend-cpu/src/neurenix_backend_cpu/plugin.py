"""The ``cpu-c`` backend: C kernels for device type ``cpu``, above core's NumPy backend.

Buffers are NumPy arrays, as in core's backend, so every kernel not listed in :data:`KERNELS` is
NumPy's. Each kernel here takes the C path only for what C does faster (float32/float64, C-contiguous,
large enough or in a pattern NumPy handles slowly) and hands anything else to the NumPy kernel, so
no non-contiguous or wrongly typed buffer reaches C. Pointers come from ``ffi.from_buffer``, which
costs a fraction of a microsecond (``ndarray.ctypes`` costs several).
"""

from __future__ import annotations

import os

import numpy as np

from neurenix.backend import REQUIRED, Backend, compose, hookimpl, reference
from neurenix.backend import numpy_backend as ref
from neurenix.backend.kernels import window_blocks

# OpenMP's idle threads must sleep, not spin: NumPy's BLAS runs its own threads between our kernels, and
# spinning workers steal its cores (measured: Conv-4 on 2 threads took 460 ms spinning, 167 ms sleeping).
# libgomp reads this when the library loads, so it is set before the import; a user's choice is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    from ._kernels import ffi, lib
except ImportError as e:  # reported in neurenix.list_backends() as the reason the backend cannot run
    ffi = lib = None
    _IMPORT_ERROR = f"its compiled kernels failed to load ({e}); reinstall neurenix-backend-cpu with a C compiler"
else:
    _IMPORT_ERROR = None

#: blocks up to this size are reused from the heap rather than mapped afresh (see nx_keep_freed_memory)
KEEP_FREED_BYTES = 1 << 30


def _keep_freed_memory() -> bool:
    """Keep freed large buffers in the heap, unless the user tunes malloc or sets NEURENIX_CPU_KEEP_FREED=0."""
    user = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
    if lib is None or os.environ.get("NEURENIX_CPU_KEEP_FREED") == "0" or any(v in os.environ for v in user) \
            or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    return bool(lib.nx_keep_freed_memory(KEEP_FREED_BYTES))


_keep_freed_memory()

_F32, _F64, _I64 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64)
_SUFFIX = {_F32: "f32", _F64: "f64"}
_ndarray = np.ndarray
_ptr = ffi.from_buffer if ffi is not None else None


def _fns(name: str) -> dict:
    """dtype -> the C function ``name`` for it."""
    return {dt: getattr(lib, f"{name}_{s}") for dt, s in _SUFFIX.items()} if lib is not None else {}


def _c_ready(*xs) -> bool:
    """Whether all are C-contiguous float arrays of one dtype, the only buffers C ever sees."""
    dt = xs[0].dtype if type(xs[0]) is _ndarray else None
    return dt in _SUFFIX and all(type(x) is _ndarray and x.dtype is dt and x.flags.c_contiguous for x in xs)


# NumPy's kernels and the compositions of the optional ones: where C does not apply
_NP = reference()

# When C beats NumPy, as measured with bench/cpu_kernels.py (docs/benchmarks.md): below these sizes
# NumPy's own loops win, since calling C costs about a microsecond more than calling a ufunc.
MIN_ELEMENTWISE = 65536  # same-shape or scalar operands: C is only faster with several threads
MIN_BROADCAST = 16384    # broadcast patterns (bias, per-channel): NumPy's strided loops are slow
MIN_REDUCE = 4096
BMM_MAX_WORK = 4096      # per product (m*n*k), of at least 8 columns: up to it, C wins whatever the layout
BMM_MAX_TILED = 1 << 20  # up to it, C's register tiles win on stacks of distinct products (one per task) with
                         # B row-major (not a transposed view) and 16 columns or more; BLAS wins the others
_threads = [lib.nx_get_num_threads() if lib is not None else 1]  # same-shape C pays only with > 1

# -- elementwise binary ------------------------------------------------------------------------------

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
    if len(_plans) > 4096:
        _plans.clear()
    _plans[key] = plan
    return plan


def _binary(name: str, ufunc):
    fns, scalar_fns = _fns(name), _fns(f"{name}_scalar")

    def kernel(a, b):
        # sizes first: most calls in training are small and go straight to the ufunc, so that path must
        # cost as little as possible on top of it
        ta, tb = type(a), type(b)
        if ta is _ndarray and tb is _ndarray:
            sa, sb = a.shape, b.shape
            if sa == sb:
                if _threads[0] == 1 or a.size < MIN_ELEMENTWISE:
                    return ufunc(a, b)
            elif (a.size if a.size > b.size else b.size) < MIN_BROADCAST:
                return ufunc(a, b)
            if a.dtype in _SUFFIX and a.dtype is b.dtype and a.flags.c_contiguous and b.flags.c_contiguous:
                plan = _broadcast_plan(sa, sb)
                if plan is not None:
                    shape, (d0, d1, d2), (a0, a1, a2), (b0, b1, b2) = plan
                    out = np.empty(shape, a.dtype)
                    fns[a.dtype](_ptr(a), _ptr(b), _ptr(out), d0, d1, d2, a0, a1, a2, b0, b1, b2)
                    return out
        elif _threads[0] > 1 and ((ta is _ndarray and (tb is float or tb is int)) or
                                  (tb is _ndarray and (ta is float or ta is int))):
            x, s, s_first = (a, b, 0) if ta is _ndarray else (b, a, 1)
            if x.size >= MIN_ELEMENTWISE and x.dtype in _SUFFIX and x.flags.c_contiguous:
                out = np.empty(x.shape, x.dtype)
                scalar_fns[x.dtype](_ptr(x), s, _ptr(out), x.size, s_first)
                return out
        return ufunc(a, b)

    kernel.__name__ = kernel.__qualname__ = name
    return kernel


# -- activations -------------------------------------------------------------------------------------

_relu, _relu_backward = _fns("relu"), _fns("relu_backward")


def relu(x):  # C at every size: NumPy's maximum(x, 0) costs twice as much, even on small arrays
    if _c_ready(x):
        out = np.empty(x.shape, x.dtype)
        _relu[x.dtype](_ptr(x), _ptr(out), x.size)
        return out
    return ref.relu(x)


def relu_backward(g, x):
    if g.shape == x.shape and _c_ready(g, x):
        out = np.empty(g.shape, g.dtype)
        _relu_backward[g.dtype](_ptr(g), _ptr(x), _ptr(out), g.size)
        return out
    return ref.relu_backward(g, x)


# -- reductions --------------------------------------------------------------------------------------

_reduce_mid, _reduce_outer = _fns("reduce_mid"), _fns("reduce_outer")
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
    sizes = [g[1] for g in groups]
    plan = {(): ("mid", 1, 1, 1), (True,): ("mid", 1, sizes[0], 1), (False,): ("mid", sizes[0], 1, 1),
            (False, True): ("mid", sizes[0], sizes[1], 1) if len(sizes) == 2 else None,
            (True, False): ("mid", 1, sizes[0], sizes[-1]) if len(sizes) == 2 else None,
            (False, True, False): ("mid", *sizes) if len(sizes) == 3 else None,
            (True, False, True): ("outer", *sizes) if len(sizes) == 3 else None}.get(labels)
    _reduce_plans[key] = plan
    return plan


def _out_shape(shape, axes, keepdim):
    if keepdim:
        return tuple(1 if i in axes else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in axes)


def _reduction(op: int, fallback):
    def kernel(x, axes, keepdim):
        if type(x) is _ndarray and x.size >= MIN_REDUCE and _c_ready(x):
            plan = _reduce_plan(x.shape, axes)
            if plan is not None:
                out = np.empty(_out_shape(x.shape, axes, keepdim), x.dtype)
                (_reduce_mid if plan[0] == "mid" else _reduce_outer)[x.dtype](op, _ptr(x), _ptr(out), *plan[1:])
                return out
        return fallback(x, axes, keepdim)
    return kernel


reduce_sum, reduce_max, reduce_min = _reduction(0, ref.sum), _reduction(1, ref.max), _reduction(2, ref.min)


def mean(x, axes, keepdim):
    if type(x) is not _ndarray or x.size < MIN_REDUCE:
        return _NP.mean(x, axes, keepdim)
    out = reduce_sum(x, axes, keepdim)
    n = 1
    for a in axes:
        n *= x.shape[a]
    if type(out) is _ndarray and out.dtype in _SUFFIX and out.ndim:
        return np.true_divide(out, n, out=out)
    return np.true_divide(out, n)


# -- softmax family ----------------------------------------------------------------------------------

_exp, _softmax_rows, _softmax_rows_bw = _fns("exp"), _fns("softmax_rows"), _fns("softmax_rows_backward")
_xent, _xent_bw = _fns("cross_entropy"), _fns("cross_entropy_backward")
MIN_EXP = 32768  # NumPy's exp is vectorised too: below this its lower call cost wins


def exp(x):
    if type(x) is _ndarray and x.size >= MIN_EXP and _c_ready(x):
        out = np.empty(x.shape, x.dtype)
        _exp[x.dtype](_ptr(x), _ptr(out), x.size)
        return out
    return _NP.exp(x)


def _rows(x, axis):
    """``(rows, classes)`` when the normalised axis of ``x`` is its last and C can read it, else None."""
    if type(x) is _ndarray and x.ndim and axis == x.ndim - 1 and x.size and _c_ready(x):
        c = x.shape[-1]
        return x.size // c, c
    return None


def _softmax_kernel(mode: int, fallback):
    def kernel(x, axis):
        rc = _rows(x, axis)
        if rc is None:
            return fallback(x, axis)
        out = np.empty(x.shape, x.dtype)
        _softmax_rows[x.dtype](mode, _ptr(x), _ptr(out), *rc)
        return out
    return kernel


def _softmax_backward_kernel(mode: int, fallback):
    def kernel(g, y, axis):
        rc = _rows(y, axis)
        if rc is None or g.shape != y.shape or not _c_ready(g, y):
            return fallback(g, y, axis)
        out = np.empty(y.shape, y.dtype)
        _softmax_rows_bw[y.dtype](mode, _ptr(g), _ptr(y), _ptr(out), *rc)
        return out
    return kernel


softmax, log_softmax = _softmax_kernel(0, _NP.softmax), _softmax_kernel(1, _NP.log_softmax)
softmax_backward = _softmax_backward_kernel(0, _NP.softmax_backward)
log_softmax_backward = _softmax_backward_kernel(1, _NP.log_softmax_backward)


def cross_entropy(x, probs):
    if type(x) is _ndarray and x.ndim == 2 and x.size and type(probs) is _ndarray and probs.shape == x.shape \
            and _c_ready(x, probs):
        n, c = x.shape
        loss, sm = np.empty(n, x.dtype), np.empty(x.shape, x.dtype)
        _xent[x.dtype](_ptr(x), _ptr(probs), _ptr(loss), _ptr(sm), n, c)
        return loss, sm
    return _NP.cross_entropy(x, probs)


def cross_entropy_backward(g, sm, probs):
    if type(g) is _ndarray and type(sm) is _ndarray and sm.ndim == 2 and sm.size and g.shape == sm.shape[:1] \
            and type(probs) is _ndarray and probs.shape == sm.shape and _c_ready(g, sm, probs):
        out = np.empty(sm.shape, sm.dtype)
        _xent_bw[sm.dtype](_ptr(g), _ptr(sm), _ptr(probs), _ptr(out), *sm.shape)
        return out
    return _NP.cross_entropy_backward(g, sm, probs)


# -- batch normalisation ----------------------------------------------------------------------------

_bn, _bn_bw = _fns("batch_norm"), _fns("batch_norm_backward")


def _bn_layout(x, groups, *params):
    """``(groups, rows per group, C, R, parameter stride)`` when x (N, C, ...) and the parameters (None,
    (C,) or (groups, C)) are C-contiguous floats of one dtype that the C kernels take, else None."""
    if type(x) is not _ndarray or x.ndim < 2 or not x.size or x.shape[0] % groups or not _c_ready(x):
        return None
    c = x.shape[1]
    ps = set()
    for p in params:
        if p is None:
            continue
        if type(p) is not _ndarray or p.dtype is not x.dtype or not p.flags.c_contiguous or \
                p.shape not in ((c,), (groups, c)):
            return None
        ps.add(c if p.ndim == 2 else 0)
    if len(ps) > 1:
        return None
    return groups, x.shape[0] // groups, c, x.size // (x.shape[0] * c), ps.pop() if ps else 0


def _opt(x):
    return ffi.NULL if x is None else _ptr(x)


def batch_norm(x, weight, bias, groups, eps):
    lay = _bn_layout(x, groups, weight, bias)
    if lay is None:
        return _NP.batch_norm(x, weight, bias, groups, eps)
    y, mean, var = np.empty(x.shape, x.dtype), np.empty((groups, lay[2]), x.dtype), np.empty((groups, lay[2]), x.dtype)
    _bn[x.dtype](_ptr(x), _opt(weight), _opt(bias), _ptr(y), _ptr(mean), _ptr(var), *lay, eps)
    return y, mean, var


def batch_norm_backward(g, x, mean, var, weight, groups, eps, needs):
    lay = _bn_layout(x, groups, weight)
    if lay is None or type(g) is not _ndarray or g.shape != x.shape or not _c_ready(g, x, mean, var) or \
            mean.shape != (groups, lay[2]) or var.shape != mean.shape:
        return _NP.batch_norm_backward(g, x, mean, var, weight, groups, eps, needs)
    outs = [np.empty(shape, x.dtype) if need else None for need, shape in zip(needs, (x.shape, mean.shape, mean.shape))]
    _bn_bw[x.dtype](_ptr(g), _ptr(x), _ptr(mean), _ptr(var), _opt(weight), *(_opt(o) for o in outs), *lay, eps)
    return tuple(outs)


# -- windows -----------------------------------------------------------------------------------------

_unfold, _fold, _max_pool, _max_pool_bw = _fns("unfold"), _fns("fold"), _fns("max_pool2d"), \
    _fns("max_pool2d_backward")


def _geometry(n, c, h, w, ks, st, pd, dl):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = ks, st, pd, dl
    oh, ow = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    return (n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)


def _contiguous_float(x):
    """``x`` as a C-contiguous array, or None if it is not a float array C handles."""
    if type(x) is not _ndarray or x.dtype not in _SUFFIX:
        return None
    return x if x.flags.c_contiguous else np.ascontiguousarray(x)


def _unfold_into(x, kernel_size, stride, padding, dilation, batch_side_by_side: bool):
    """unfold's (N, K, L), or with ``batch_side_by_side`` unfold_batch's (K, N*L); None where C does not apply."""
    xc = _contiguous_float(x)
    if xc is None or xc.size == 0:
        return None
    g = _geometry(*xc.shape, kernel_size, stride, padding, dilation)
    n, rows, blocks = g[0], g[1] * g[4] * g[5], g[12] * g[13]
    if batch_side_by_side:
        out, strides = np.empty((rows, n * blocks), xc.dtype), (blocks, n * blocks)
    else:
        out, strides = np.empty((n, rows, blocks), xc.dtype), (rows * blocks, blocks)
    _unfold[xc.dtype](_ptr(xc), _ptr(out), *strides, *g)
    return out


def _fold_from(cols, n, output_size, kernel_size, stride, padding, dilation, batch_side_by_side: bool):
    """The adjoint of :func:`_unfold_into` for ``n`` images; None where C does not apply."""
    cc = _contiguous_float(cols)
    if cc is None or cc.size == 0:
        return None
    rows = cc.shape[1] if not batch_side_by_side else cc.shape[0]
    g = _geometry(n, rows // (kernel_size[0] * kernel_size[1]), *output_size, kernel_size, stride, padding, dilation)
    blocks = g[12] * g[13]
    strides = (blocks, n * blocks) if batch_side_by_side else (rows * blocks, blocks)
    out = np.empty(g[:4], cc.dtype)
    _fold[cc.dtype](_ptr(cc), _ptr(out), *strides, *g)
    return out


def unfold(x, kernel_size, stride, padding, dilation):
    out = _unfold_into(x, kernel_size, stride, padding, dilation, False)
    return ref.unfold(x, kernel_size, stride, padding, dilation) if out is None else out


def fold(cols, output_size, kernel_size, stride, padding, dilation):
    out = _fold_from(cols, cols.shape[0], output_size, kernel_size, stride, padding, dilation, False)
    return ref.fold(cols, output_size, kernel_size, stride, padding, dilation) if out is None else out


def unfold_batch(x, kernel_size, stride, padding, dilation):
    out = _unfold_into(x, kernel_size, stride, padding, dilation, True)
    return _NP.unfold_batch(x, kernel_size, stride, padding, dilation) if out is None else out


def fold_batch(cols, output_size, kernel_size, stride, padding, dilation):
    blocks = window_blocks(output_size, kernel_size, stride, padding, dilation)
    out = _fold_from(cols, cols.shape[1] // blocks, output_size, kernel_size, stride, padding, dilation, True)
    return _NP.fold_batch(cols, output_size, kernel_size, stride, padding, dilation) if out is None else out


def max_pool2d(x, kernel_size, stride, padding, dilation):
    xc = _contiguous_float(x)
    if xc is None or xc.size == 0:
        return _NP.max_pool2d(x, kernel_size, stride, padding, dilation)
    g = _geometry(*xc.shape, kernel_size, stride, padding, dilation)
    out = np.empty((g[0], g[1], g[12], g[13]), xc.dtype)
    idx = np.empty(out.shape, _I64)
    _max_pool[xc.dtype](_ptr(xc), _ptr(out), _ptr(idx), *g)
    return out, idx


def max_pool2d_backward(g, indices, input_size, kernel_size, stride, padding, dilation):
    gc = _contiguous_float(g)
    if gc is None or gc.size == 0 or type(indices) is not _ndarray or indices.dtype is not _I64 \
            or indices.shape != gc.shape:
        return _NP.max_pool2d_backward(g, indices, input_size, kernel_size, stride, padding, dilation)
    ic = np.ascontiguousarray(indices)
    n, c = gc.shape[:2]
    out = np.empty((n, c, *input_size), gc.dtype)
    _max_pool_bw[gc.dtype](_ptr(gc), _ptr(ic), _ptr(out),
                           *_geometry(n, c, *input_size, kernel_size, stride, padding, dilation))
    return out


# -- small batched matmul ----------------------------------------------------------------------------

_bmm = _fns("bmm")


def _operand(x):
    """``(array C reads, transposed?)``: a C-contiguous matrix stack, or one whose last two axes are
    swapped (a transposed view, read in place), else a contiguous copy."""
    if x.flags.c_contiguous:
        return x, 0
    t = x.swapaxes(-1, -2)
    if t.flags.c_contiguous:
        return t, 1
    return np.ascontiguousarray(x), 0


def matmul(a, b):
    """Stacks of small products (one per task, say) in one C call; single or large products go to BLAS."""
    if type(a) is _ndarray and type(b) is _ndarray and a.dtype is b.dtype and a.dtype in _SUFFIX:
        sa, sb = a.shape, b.shape
        if (len(sa) == 3 or len(sb) == 3) and len(sa) <= 3 and len(sb) <= 3:
            m, k, n = sa[-2], sa[-1], sb[-1]
            ba, bb = sa[0] if len(sa) == 3 else 1, sb[0] if len(sb) == 3 else 1
            work = m * n * k
            if work and n >= 8 and (ba == bb or ba == 1 or bb == 1) and max(ba, bb) > 1 and (work <= BMM_MAX_WORK or (
                    work <= BMM_MAX_TILED and ba == bb and n >= 16 and b.flags.c_contiguous)):
                ac, ta = _operand(a)
                bc, tb = _operand(b)
                out = np.empty((ba if ba != 1 else bb, m, n), a.dtype)
                _bmm[a.dtype](_ptr(ac), _ptr(bc), _ptr(out), out.shape[0], m, n, k, m * k if ba != 1 else 0,
                              k * n if bb != 1 else 0, ta, tb)
                return out
    return ref.matmul(a, b)


# -- fused linear layer -----------------------------------------------------------------------------

_linear, _linear_bw = _fns("linear"), _fns("linear_backward")
LINEAR_MAX_WORK = 1 << 16  # rows * in * out per task, up to which the fused C layer beats matmul + bias add


def _task_stack(x, w):
    """``(tasks, n, in, out)`` when ``x`` (tasks, n, in) and ``w`` (tasks, out, in) are C-contiguous float
    arrays of one dtype, small enough for the fused C kernels, else None."""
    if type(x) is not _ndarray or type(w) is not _ndarray or x.ndim != 3 or w.ndim != 3:
        return None
    (t, n, ni), (tw, no, niw) = x.shape, w.shape
    if t != tw or ni != niw or not 0 < n * ni * no <= LINEAR_MAX_WORK or not _c_ready(x, w):
        return None
    return t, n, ni, no


def linear(x, w, b):
    """``x @ w^T + b`` in one C call for the task-batched layers of meta-learning (one weight per task);
    a single weight goes to BLAS."""
    dims = _task_stack(x, w)
    if dims is not None and (b is None or (type(b) is _ndarray and b.dtype is x.dtype and b.flags.c_contiguous)):
        t, n, ni, no = dims
        out = np.empty((t, n, no), x.dtype)
        _linear[x.dtype](_ptr(x), _ptr(w), ffi.NULL if b is None else _ptr(b), _ptr(out), t, n, ni, no,
                         n * ni, no * ni, no)
        return out
    return (_NP if w.ndim == 2 else _FUSED).linear(x, w, b)


def linear_backward(g, x, w, needs):
    dims = _task_stack(x, w)
    if dims is not None and type(g) is _ndarray and g.dtype is x.dtype and g.flags.c_contiguous and \
            g.shape == (dims[0], dims[1], dims[3]):
        t, n, ni, no = dims
        gx, gw, gb = (np.empty(shape, x.dtype) if need else None
                      for need, shape in zip(needs, ((t, n, ni), (t, no, ni), (t, no))))
        _linear_bw[x.dtype](_ptr(g), _ptr(x), _ptr(w), *(ffi.NULL if a is None else _ptr(a) for a in (gx, gw, gb)),
                            t, n, ni, no, n * ni, no * ni)
        return gx, gw, gb
    return (_NP if w.ndim == 2 else _FUSED).linear_backward(g, x, w, needs)


# -- fused optimizer steps ---------------------------------------------------------------------------

_adam, _sgd = _fns("adam"), _fns("sgd")


def _same_float(*lists):
    """The common float dtype of every buffer in ``lists`` (None entries skipped), or None."""
    dt = lists[0][0].dtype if lists[0] and type(lists[0][0]) is _ndarray else None
    if dt not in _SUFFIX:
        return None
    for xs in lists:
        for x in xs:
            if x is not None and (type(x) is not _ndarray or x.dtype is not dt):
                return None
    return dt


def _pointers(arrays):
    """A C array of pointers to ``arrays`` (made C-contiguous first), and what keeps them alive."""
    arrays = [x if x is None or x.flags.c_contiguous else np.ascontiguousarray(x) for x in arrays]
    keep = [ffi.NULL if x is None else _ptr(x) for x in arrays]
    return ffi.new("void *[]", keep), (arrays, keep)


def adam_step(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, weight_decay, decoupled, maximize):
    dt = _same_float(params, grads, exp_avgs, exp_avg_sqs)
    if dt is None:
        return _NP.adam_step(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, weight_decay,
                             decoupled, maximize)
    outs = [[np.empty(p.shape, dt) for p in params] for _ in range(3)]
    ptrs = [_pointers(xs) for xs in (params, grads, exp_avgs, exp_avg_sqs, *outs)]
    sizes = ffi.new("int64_t[]", [p.size for p in params])
    _adam[dt](len(params), *(p for p, _ in ptrs), sizes, lr, beta1, beta2, eps, weight_decay, int(decoupled),
              int(maximize), 1.0 - beta1 ** step, 1.0 - beta2 ** step)
    return outs[0], outs[1], outs[2]


def sgd_step(params, grads, bufs, lr, momentum, dampening, nesterov, weight_decay, maximize):
    dt = _same_float(params, grads, bufs)
    if dt is None:
        return _NP.sgd_step(params, grads, bufs, lr, momentum, dampening, nesterov, weight_decay, maximize)
    new_p = [np.empty(p.shape, dt) for p in params]
    new_b = [np.empty(p.shape, dt) if momentum else None for p in params]  # C fills them when momentum is on
    ptrs = [_pointers(xs) for xs in (params, grads, bufs, new_p, new_b)]
    sizes = ffi.new("int64_t[]", [p.size for p in params])
    _sgd[dt](len(params), *(p for p, _ in ptrs), sizes, lr, momentum, dampening, int(nesterov), weight_decay,
             int(maximize))
    return new_p, new_b if momentum else list(bufs)  # without momentum the buffers pass through, as in core


# -- the backend -------------------------------------------------------------------------------------

#: every kernel this backend can run in C (bench/cpu_kernels.py times each against NumPy's)
ALL_KERNELS = {
    **{name: _binary(name, ref.KERNELS[name]) for name in ("add", "sub", "mul", "div", "maximum", "minimum")},
    "relu": relu, "relu_backward": relu_backward,
    "sum": reduce_sum, "mean": mean, "max": reduce_max, "min": reduce_min,
    "exp": exp, "softmax": softmax, "log_softmax": log_softmax, "softmax_backward": softmax_backward,
    "log_softmax_backward": log_softmax_backward, "cross_entropy": cross_entropy,
    "cross_entropy_backward": cross_entropy_backward,
    "unfold": unfold, "fold": fold, "unfold_batch": unfold_batch, "fold_batch": fold_batch,
    "max_pool2d": max_pool2d, "max_pool2d_backward": max_pool2d_backward,
    "matmul": matmul, "adam_step": adam_step, "sgd_step": sgd_step,
    "linear": linear, "linear_backward": linear_backward,
    "batch_norm": batch_norm, "batch_norm_backward": batch_norm_backward,
}

#: the kernels registered: those measured faster than NumPy's (bench/results/cpu_kernels.json, on one
#: thread and two)
KERNELS = {name: ALL_KERNELS[name] for name in (
    "add", "sub", "mul", "div", "maximum", "minimum", "relu", "relu_backward", "sum", "mean", "max", "min",
    "exp", "softmax", "log_softmax", "softmax_backward", "log_softmax_backward", "cross_entropy",
    "cross_entropy_backward", "unfold", "fold", "unfold_batch", "fold_batch", "max_pool2d", "max_pool2d_backward",
    "matmul", "adam_step", "sgd_step",
    "linear", "linear_backward", "batch_norm", "batch_norm_backward")}

# the compositions of linear and its gradient over this backend's own kernels (C matmul where it wins)
_FUSED = compose({**{n: ref.KERNELS[n] for n in REQUIRED}, **{n: KERNELS[n] for n in ("matmul", "sum", "add")}})


class CpuBackend(Backend):
    """C kernels (cffi, OpenMP) for ``cpu``, overriding the NumPy reference where they are faster."""

    device_type = "cpu"
    name = "cpu-c"
    priority = 10

    def unavailable_reason(self) -> str | None:
        return _IMPORT_ERROR

    def device_name(self, index: int) -> str:
        threads = f"OpenMP, {lib.nx_get_num_threads()} thread(s)" if lib.nx_has_openmp() else "no OpenMP"
        return f"host CPU (C kernels, {threads})"

    def set_num_threads(self, n: int) -> None:
        lib.nx_set_num_threads(n)
        _threads[0] = n

    def kernels(self):
        return KERNELS


@hookimpl
def neurenix_backends():
    return [CpuBackend()]
