"""Core's compositions: each optional kernel written with the required ones, so that a backend need
provide only ``REQUIRED`` (``kernels.py``). ``compose(kernels)`` gives a backend's kernels completed with
these; it is how core resolves a device type, and a backend may call it to build on compositions itself
(``compose({**reference, **mine})``).

Each builder takes the table ``k`` and returns the kernel, which looks up what it uses on ``k`` at call
time, so a composition always uses the best kernel the table ends up with (a backend's own ``neg``, else
core's composition of it). The first group composes exactly what version 1 of the contract required;
their results equal a direct kernel's bit for bit (NaN propagation, -0.0 and int64 extremes included).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from .kernels import OPTIONAL, REQUIRED, _prod, out_size, window_blocks

# -- exact compositions of former required kernels -------------------------------------------------------


def _is_buffer(v) -> bool:
    return hasattr(v, "dtype") and not isinstance(v, (bool, int, float))


def _kind(*operands) -> str:
    """The dtype kind ("f", "i" or "b") of the first buffer among ``operands``."""
    return next(v.dtype.kind for v in operands if _is_buffer(v))


def _neg(k):
    def neg(x):
        return k.mul(x, -1)  # exact: flips the sign of floats (-0.0, NaN), wraps int64's minimum as negation does
    return neg


def _sub(k):
    def sub(a, b):
        if not _is_buffer(b):
            return k.add(a, -b)
        return k.add(a, k.neg(b))  # a - b is a + (-b) in IEEE arithmetic and in two's complement
    return sub


def _flip(k, v, kind: str):
    """An order-reversing bijection: -v on floats, ~v (= -1 - v, no overflow) on int64, not v on bools."""
    if not _is_buffer(v):
        return -v if kind == "f" else (-1 - v if kind == "i" else not v)
    if kind == "f":
        return k.neg(v)
    return k.sub(-1, v) if kind == "i" else k.eq(v, False)


def _minimum(k):
    def minimum(a, b):
        kind = _kind(a, b)
        if kind == "b":
            return k.mul(a, b)  # logical and
        return _flip(k, k.maximum(_flip(k, a, kind), _flip(k, b, kind)), kind)
    return minimum


def _min(k):
    def min(x, axes, keepdim):  # noqa: A001
        kind = x.dtype.kind
        return _flip(k, k.max(_flip(k, x, kind), axes, keepdim), kind)
    return min


def _argmin(k):
    def argmin(x, axis, keepdim):
        return k.argmax(_flip(k, x, x.dtype.kind), axis, keepdim)  # the first minimum is the first maximum flipped
    return argmin


def _gt(k):
    def gt(a, b):
        return k.lt(b, a)
    return gt


def _le(k):
    def le(a, b):
        same = k.eq(a, b)
        return k.where(same, same, k.lt(a, b))  # (not "not gt": NaN <= x is false)
    return le


def _ge(k):
    def ge(a, b):
        return k.le(b, a)
    return ge


def _ne(k):
    def ne(a, b):
        return k.eq(k.eq(a, b), False)  # NaN != NaN is true
    return ne


def _relu(k):
    def relu(x):
        return k.maximum(x, 0)  # NaN wins
    return relu


def _abs(k):
    def abs(x):  # noqa: A001
        return k.where(k.lt(x, 0), k.neg(x), k.where(k.eq(x, 0), 0, x))  # -0.0 -> +0.0; NaN stays
    return abs


def _sign(k):
    def sign(x):
        return k.where(k.lt(0, x), 1, k.where(k.lt(x, 0), -1, k.where(k.eq(x, 0), 0, x)))  # NaN stays; sign(-0.0) = 0
    return sign


def _sigmoid(k):
    def sigmoid(x):
        return k.div(1, k.add(k.exp(k.neg(x)), 1))  # exp overflows to inf for very negative x: 1 / inf = 0
    return sigmoid


# -- fused paths -----------------------------------------------------------------------------------------


def _mean(k):
    def mean(x, axes, keepdim):
        n = _prod(x.shape[a] for a in axes)
        return k.div(k.sum(x, axes, keepdim), float(n))
    return mean


def _softmax(k):
    def softmax(x, axis):
        e = k.exp(k.sub(x, k.max(x, (axis,), True)))
        return k.div(e, k.sum(e, (axis,), True))
    return softmax


def _log_softmax(k):
    def log_softmax(x, axis):
        z = k.sub(x, k.max(x, (axis,), True))
        return k.sub(z, k.log(k.sum(k.exp(z), (axis,), True)))
    return log_softmax


def _softmax_backward(k):
    def softmax_backward(g, y, axis):
        return k.mul(y, k.sub(g, k.sum(k.mul(g, y), (axis,), True)))
    return softmax_backward


def _log_softmax_backward(k):
    def log_softmax_backward(g, y, axis):
        return k.sub(g, k.mul(k.exp(y), k.sum(g, (axis,), True)))
    return log_softmax_backward


def _cross_entropy(k):
    def cross_entropy(x, probs):
        logp = k.log_softmax(x, 1)
        return k.neg(k.sum(k.mul(probs, logp), (1,), False)), k.exp(logp)
    return cross_entropy


def _cross_entropy_backward(k):
    def cross_entropy_backward(g, softmax, probs):
        d = k.sub(k.mul(softmax, k.sum(probs, (1,), True)), probs)
        return k.mul(k.reshape(g, (g.shape[0], 1)), d)
    return cross_entropy_backward


def _bn_view(k, x, groups):
    """x (N, C, ...) as (groups, N / groups, C, rest), and the number of values per statistic."""
    n, c = x.shape[0], x.shape[1]
    rest = _prod(x.shape[2:])
    return k.reshape(x, (groups, n // groups, c, rest)), (n // groups) * rest


def _bn_param(k, p, groups, c):
    return k.reshape(p, ((len(p.shape) == 2 and groups) or 1, 1, c, 1))


def _batch_norm(k):
    def batch_norm(x, weight, bias, groups, eps):
        xr, m = _bn_view(k, x, groups)
        c = x.shape[1]
        mu = k.div(k.sum(xr, (1, 3), True), float(m))
        d = k.sub(xr, mu)
        var = k.div(k.sum(k.mul(d, d), (1, 3), True), float(m))
        scale = k.pow(k.add(var, eps), -0.5)
        if weight is not None:
            scale = k.mul(scale, _bn_param(k, weight, groups, c))
        y = k.mul(d, scale)
        if bias is not None:
            y = k.add(y, _bn_param(k, bias, groups, c))
        return k.reshape(y, x.shape), k.reshape(mu, (groups, c)), k.reshape(var, (groups, c))
    return batch_norm


def _batch_norm_backward(k):
    def batch_norm_backward(g, x, mean, var, weight, groups, eps, needs):
        xr, m = _bn_view(k, x, groups)
        gr, _ = _bn_view(k, g, groups)
        c = x.shape[1]
        inv = k.pow(k.add(k.reshape(var, (groups, 1, c, 1)), eps), -0.5)
        xhat = k.mul(k.sub(xr, k.reshape(mean, (groups, 1, c, 1))), inv)
        gb, gw = k.sum(gr, (1, 3), True), k.sum(k.mul(gr, xhat), (1, 3), True)
        gx = None
        if needs[0]:
            w = inv if weight is None else k.mul(inv, _bn_param(k, weight, groups, c))
            gx = k.mul(k.div(w, float(m)), k.sub(k.sub(k.mul(gr, float(m)), gb), k.mul(xhat, gw)))
            gx = k.reshape(gx, x.shape)
        return gx, k.reshape(gw, (groups, c)) if needs[1] else None, k.reshape(gb, (groups, c)) if needs[2] else None
    return batch_norm_backward


_POOL = ((2, 2), (2, 2), (0, 0), (1, 1))  # batch_norm_relu_pool's window: kernel, stride, padding, dilation


def _batch_norm_relu_pool(k):
    def batch_norm_relu_pool(x, weight, bias, groups, eps):
        z, mean, var = k.batch_norm(x, weight, bias, groups, eps)
        y, _ = k.max_pool2d(k.relu(z), *_POOL)
        return y, mean, var
    return batch_norm_relu_pool


def _batch_norm_relu_pool_backward(k):
    def batch_norm_relu_pool_backward(g, x, mean, var, weight, bias, groups, eps, needs):
        z, _, _ = k.batch_norm(x, weight, bias, groups, eps)  # the forward's z again (its statistics are x's)
        _, indices = k.max_pool2d(k.relu(z), *_POOL)
        gz = k.relu_backward(k.max_pool2d_backward(g, indices, tuple(x.shape[2:]), *_POOL), z)
        return k.batch_norm_backward(gz, x, mean, var, weight, groups, eps, needs)
    return batch_norm_relu_pool_backward


def _relu_backward(k):
    def relu_backward(g, x):
        return k.where(k.gt(x, 0), g, 0)
    return relu_backward


def _sgd_step(k):
    def sgd_step(params, grads, bufs, lr, momentum, dampening, nesterov, weight_decay, maximize):
        new_params, new_bufs = [], []
        for p, g, b in zip(params, grads, bufs):
            if maximize:
                g = k.neg(g)
            if weight_decay:
                g = k.add(g, k.mul(p, weight_decay))
            if momentum:
                b = g if b is None else k.add(k.mul(b, momentum), k.mul(g, 1.0 - dampening))
                g = k.add(g, k.mul(b, momentum)) if nesterov else b
            new_params.append(k.sub(p, k.mul(g, lr)))
            new_bufs.append(b)
        return new_params, new_bufs
    return sgd_step


def _adam_step(k):
    def adam_step(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, weight_decay, decoupled,
                  maximize):
        bias1 = 1.0 - beta1 ** step
        bias2 = 1.0 - beta2 ** step
        out_p, out_m, out_v = [], [], []
        for p, g, m, v in zip(params, grads, exp_avgs, exp_avg_sqs):
            if maximize:
                g = k.neg(g)
            if weight_decay and decoupled:
                p = k.mul(p, 1.0 - lr * weight_decay)
            elif weight_decay:
                g = k.add(g, k.mul(p, weight_decay))
            m = k.add(k.mul(m, beta1), k.mul(g, 1.0 - beta1))
            v = k.add(k.mul(v, beta2), k.mul(k.mul(g, g), 1.0 - beta2))
            denom = k.add(k.div(k.sqrt(v), bias2 ** 0.5), eps)
            out_p.append(k.sub(p, k.mul(k.div(m, denom), lr / bias1)))
            out_m.append(m)
            out_v.append(v)
        return out_p, out_m, out_v
    return adam_step


def _max_pool2d(k):
    def max_pool2d(x, kernel_size, stride, padding, dilation):
        n, c, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
        planes = k.reshape(x, (n * c, 1, h, w))
        if ph or pw:
            planes = k.pad(planes, ((0, 0), (0, 0), (ph, ph), (pw, pw)), -math.inf)
        cols = k.unfold(planes, kernel_size, stride, (0, 0), dilation)  # (N*C, kh*kw, OH*OW)
        shape = (n, c, out_size(h, kh, sh, ph, dh), out_size(w, kw, sw, pw, dw))
        return k.reshape(k.max(cols, (1,), False), shape), k.reshape(k.argmax(cols, 1, False), shape)
    return max_pool2d


def _max_pool2d_backward(k):
    def max_pool2d_backward(g, indices, input_size, kernel_size, stride, padding, dilation):
        n, c, oh, ow = g.shape
        idx, gg = k.reshape(indices, (n * c, 1, oh * ow)), k.reshape(g, (n * c, 1, oh * ow))
        cols = k.cat([k.where(k.eq(idx, j), gg, 0) for j in range(kernel_size[0] * kernel_size[1])], 1)
        out = k.fold(cols, input_size, kernel_size, stride, padding, dilation)
        return k.reshape(out, (n, c, *input_size))
    return max_pool2d_backward


def _unfold_batch(k):
    def unfold_batch(x, kernel_size, stride, padding, dilation):
        cols = k.unfold(x, kernel_size, stride, padding, dilation)  # (N, K, L)
        n, rows, blocks = cols.shape
        return k.reshape(k.permute(cols, (1, 0, 2)), (rows, n * blocks))
    return unfold_batch


def _fold_batch(k):
    def fold_batch(cols, output_size, kernel_size, stride, padding, dilation):
        rows, blocks = cols.shape[0], window_blocks(output_size, kernel_size, stride, padding, dilation)
        per_image = k.permute(k.reshape(cols, (rows, cols.shape[1] // blocks, blocks)), (1, 0, 2))  # (N, K, L)
        return k.fold(per_image, output_size, kernel_size, stride, padding, dilation)
    return fold_batch


# Up to this many output pixels per image, a convolution runs one matrix product per task over the columns of
# all its images (unfold_batch): per-image products are then too small for BLAS to run fast. Above it they are
# efficient already, and the output's transposing copy would cost more than it saves (Conv-4's first layer,
# 28x28: 6.6 -> 15 ms forward and weight gradient, measured with OpenBLAS on one thread).
BATCH_PRODUCT_MAX_BLOCKS = 256


def conv_shape(x_shape, w_shape, stride, padding, dilation) -> tuple:
    """(n, t, o, rows, kernel_size, oh, ow) of a convolution of an input of ``x_shape`` by a weight of ``w_shape``:
    t tasks (1 for a 4-D weight), rows = C/groups * kh * kw, (oh, ow) the output's size."""
    n, _, h, w = x_shape
    t = w_shape[0] if len(w_shape) == 5 else 1
    o, cg, kh, kw = w_shape[-4:]
    oh, ow = (out_size((h, w)[i], (kh, kw)[i], stride[i], padding[i], dilation[i]) for i in (0, 1))
    return n, t, o, cg * kh * kw, (kh, kw), oh, ow


def _by_task(k, g, t: int, n: int, o: int, blocks: int):
    """(N, O, OH, OW) -> (T, O, N/T*L), or (O, N*L) for one task: each task's rows side by side, as unfold_batch
    lays out columns."""
    gt = k.copy(k.permute(k.reshape(g, (t, n // t, o, blocks)), (0, 2, 1, 3)))
    return k.reshape(gt, (t, o, n // t * blocks) if t > 1 else (o, n * blocks))


def _batch_cols(k, cols, t: int, rows: int):
    """unfold_batch's (K, N*L) columns as (T, K, N/T*L), or as they are for one task."""
    return k.permute(k.reshape(cols, (rows, t, cols.shape[1] // t)), (1, 0, 2)) if t > 1 else cols


def _task_weight(k, weight, t: int, o: int, rows: int):
    """The weight as (T, O, K), or (O, K) for one task."""
    return k.reshape(weight, (t, o, rows) if t > 1 else (o, rows))


def _transposed(k, x):
    return k.permute(x, _swap_last(len(x.shape)))


def _conv2d(k):
    def conv2d(x, weight, bias, stride, padding, dilation, groups):
        n, t, o, rows, ks, oh, ow = conv_shape(x.shape, weight.shape, stride, padding, dilation)
        blocks = oh * ow
        if groups == 1 and blocks <= BATCH_PRODUCT_MAX_BLOCKS:
            cols = k.unfold_batch(x, ks, stride, padding, dilation)  # (K, N*L): one product per task
            out = k.matmul(_task_weight(k, weight, t, o, rows), _batch_cols(k, cols, t, rows))
            out = k.reshape(out, (t, o, n // t, blocks))
            if bias is not None:
                out = k.add(out, k.reshape(bias, (t, o, 1, 1)))
            # (T, O, N/T, L) -> C-contiguous (N, O, OH, OW): the layout batch norm and ReLU take fast paths on
            return k.reshape(k.copy(k.permute(out, (0, 2, 1, 3))), (n, o, oh, ow))
        cols = k.unfold(x, ks, stride, padding, dilation)  # (N, C*kh*kw, L)
        if t == 1 and groups == 1:
            out = k.matmul(k.reshape(weight, (o, rows)), cols)  # (N, O, L)
        else:  # (T, 1, G, O/G, K) @ (T, N/T, G, K, L)
            cols = k.reshape(cols, (t, n // t, groups, rows, blocks))
            out = k.matmul(k.reshape(weight, (t, 1, groups, o // groups, rows)), cols)
        out = k.reshape(out, (t, n // t, o, blocks))
        if bias is not None:
            out = k.add(out, k.reshape(bias, (t, 1, o, 1)))
        return k.reshape(out, (n, o, oh, ow))
    return conv2d


def _conv2d_input_grad(k):
    def conv2d_input_grad(g, weight, input_shape, stride, padding, dilation, groups):
        n, t, o, rows, ks, oh, ow = conv_shape(input_shape, weight.shape, stride, padding, dilation)
        blocks, size = oh * ow, tuple(input_shape[2:])
        if groups == 1 and blocks <= BATCH_PRODUCT_MAX_BLOCKS:
            cols = k.matmul(_transposed(k, _task_weight(k, weight, t, o, rows)), _by_task(k, g, t, n, o, blocks))
            if t > 1:  # (T, K, N/T*L) -> (K, N*L)
                cols = k.reshape(k.copy(k.permute(cols, (1, 0, 2))), (rows, n * blocks))
            return k.fold_batch(cols, size, ks, stride, padding, dilation)
        wt = k.permute(k.reshape(weight, (t, 1, groups, o // groups, rows)), (0, 1, 2, 4, 3))  # (T, 1, G, K, O/G)
        cols = k.matmul(wt, k.reshape(g, (t, n // t, groups, o // groups, blocks)))  # (T, N/T, G, K, L)
        return k.fold(k.reshape(cols, (n, groups * rows, blocks)), size, ks, stride, padding, dilation)
    return conv2d_input_grad


def _conv2d_weight_grad(k):
    def conv2d_weight_grad(x, g, weight_shape, stride, padding, dilation, groups):
        n, t, o, rows, ks, oh, ow = conv_shape(x.shape, weight_shape, stride, padding, dilation)
        blocks = oh * ow
        if groups == 1 and blocks <= BATCH_PRODUCT_MAX_BLOCKS:
            cols = k.unfold_batch(x, ks, stride, padding, dilation)  # (K, N*L)
            gw = k.matmul(_by_task(k, g, t, n, o, blocks), _transposed(k, _batch_cols(k, cols, t, rows)))
            return k.reshape(gw, tuple(weight_shape))
        cols = k.reshape(k.unfold(x, ks, stride, padding, dilation), (t, n // t, groups, rows, blocks))
        gg = k.reshape(g, (t, n // t, groups, o // groups, blocks))
        gw = k.sum(k.matmul(gg, k.permute(cols, (0, 1, 2, 4, 3))), (1,), False)  # (T, G, O/G, K)
        return k.reshape(gw, tuple(weight_shape))
    return conv2d_weight_grad


def _swap_last(ndim: int) -> tuple:
    return (*range(ndim - 2), ndim - 1, ndim - 2)


def _linear(k):
    def linear(x, w, b):
        y = k.matmul(x, k.permute(w, _swap_last(len(w.shape))))
        if b is None:
            return y
        return k.add(y, k.reshape(b, b.shape[:-1] + (1, b.shape[-1])) if len(w.shape) > 2 else b)
    return linear


def _linear_backward(k):
    def linear_backward(g, x, w, needs):
        gx = k.matmul(g, w) if needs[0] else None
        if len(w.shape) == 2 and len(g.shape) > 2:  # one weight for every row: fold the leading axes into rows
            g = k.reshape(g, (_prod(g.shape[:-1]), g.shape[-1]))
            x = k.reshape(x, (_prod(x.shape[:-1]), x.shape[-1]))
        gw = k.matmul(k.permute(g, _swap_last(len(g.shape))), x) if needs[1] else None
        gb = k.sum(g, (len(g.shape) - 2,), False) if needs[2] else None
        return gx, gw, gb
    return linear_backward


# -- linear algebra: column by column, for the small systems few-shot learning solves (a ridge-regression head's
# (support x support) system), with no host round trip: failures are reported in an info buffer --------------------

_INT64 = np.dtype(np.int64)
_ALL = slice(None)


def _stacked(k, x):
    """``x`` (..., r, c) as (B, r, c): one batch axis."""
    return k.reshape(x, (_prod(x.shape[:-2]), *x.shape[-2:]))


def _zeros_int(k, like):
    """int64 zeros of ``like``'s shape, on its device (a composition has no device index for ``full``): x < x is false,
    NaN included."""
    return k.cast(k.lt(like, like), _INT64)


def _first_failure(k, info, failed, step: int):
    """``info`` with ``step`` where ``failed`` and nothing failed at an earlier step."""
    return k.where(k.mul(failed, k.eq(info, 0)), step, info)


def _iota(k, like, m: int):
    """int64 0, 1, ..., m - 1 on ``like``'s device: a zero made from like's first element, doubled (itself, then
    itself shifted) until long enough."""
    first = k.getitem(k.reshape(like, (_prod(like.shape),)), (slice(0, 1),))
    r = _zeros_int(k, first)
    while r.shape[0] < m:
        r = k.cat([r, k.add(r, r.shape[0])], 0)
    return k.getitem(r, (slice(0, m),))


def _cholesky(k):
    def cholesky(a):
        s = _stacked(k, a)  # the trailing block still to factor: after step j, (n - j - 1) square
        b, n = s.shape[0], s.shape[1]
        info = _zeros_int(k, k.getitem(s, (_ALL, 0, 0)))
        cols = []
        for j in range(n):
            d = k.getitem(s, (_ALL, 0, 0))
            failed = k.eq(k.lt(0.0, d), False)  # not d > 0: NaN fails too
            info = _first_failure(k, info, failed, j + 1)
            root = k.sqrt(k.where(failed, 1.0, d))  # go on with a harmless pivot: info says the result is void
            col = k.div(k.getitem(s, (_ALL, _ALL, 0)), k.reshape(root, (b, 1)))  # L[j:, j], from the lower part only
            cols.append(k.reshape(k.pad(col, ((0, 0), (j, 0)), 0.0), (b, n, 1)))
            m = n - j - 1
            if m:  # the Schur complement: only its lower part is read later, so a's upper triangle never is
                below = k.getitem(col, (_ALL, slice(1, None)))
                outer = k.mul(k.reshape(below, (b, m, 1)), k.reshape(below, (b, 1, m)))
                s = k.sub(k.getitem(s, (_ALL, slice(1, None), slice(1, None))), outer)
        return k.reshape(k.cat(cols, 2), a.shape), k.reshape(info, a.shape[:-2])
    return cholesky


def _solve_triangular(k):
    def solve_triangular(a, b, upper, unitriangular):
        t, rest = _stacked(k, a), _stacked(k, b)  # rest: the rows not solved yet, less the solved rows' part
        n = t.shape[1]
        x = [None] * n
        for i in range(n - 1, -1, -1) if upper else range(n):
            at = i if upper else 0  # row i's place in rest (rows 0..i if upper, else i..n-1)
            xi = k.getitem(rest, (_ALL, slice(at, at + 1)))
            if not unitriangular:
                xi = k.div(xi, k.getitem(t, (_ALL, slice(i, i + 1), slice(i, i + 1))))
            x[i] = xi
            if (i if upper else n - 1 - i) == 0:
                continue
            column = k.getitem(t, (_ALL, slice(0, i) if upper else slice(i + 1, n), slice(i, i + 1)))
            rest = k.sub(k.getitem(rest, (_ALL, slice(0, i) if upper else slice(1, None))), k.mul(column, xi))
        return k.reshape(k.cat(x, 1), b.shape)
    return solve_triangular


def _solve(k):
    def solve(a, b):
        t = _stacked(k, a)
        nb, n, width = t.shape[0], t.shape[1], t.shape[1] + b.shape[-1]
        batch = _iota(k, t, nb)
        m = k.cat([t, _stacked(k, b)], 2)  # [a | b]: the rows still to eliminate, from column j on
        info = _zeros_int(k, k.getitem(t, (_ALL, 0, 0)))
        rows = []  # the rows of [u | c] with u upper-triangular, u x = c
        for j in range(n):
            p = k.argmax(k.abs(k.getitem(m, (_ALL, _ALL, 0))), 1, False)  # partial pivoting: the largest magnitude
            pivot = k.getitem(m, (batch, p, _ALL))
            rows.append(k.reshape(k.pad(pivot, ((0, 0), (j, 0)), 0.0), (nb, 1, width)))
            d = k.getitem(pivot, (_ALL, 0))
            failed = k.eq(d, 0.0)
            info = _first_failure(k, info, failed, j + 1)
            if j == n - 1:
                break
            # the other rows: the first row takes the pivot row's place, then goes
            others = k.getitem(k.index_put(m, (batch, p, _ALL), k.getitem(m, (_ALL, 0, _ALL)), False),
                               (_ALL, slice(1, None), _ALL))
            divisor = k.reshape(k.where(failed, 1.0, d), (nb, 1, 1))  # (a zero pivot: info says x is void)
            factors = k.div(k.getitem(others, (_ALL, _ALL, slice(0, 1))), divisor)
            tail = k.reshape(k.getitem(pivot, (_ALL, slice(1, None))), (nb, 1, width - j - 1))
            m = k.sub(k.getitem(others, (_ALL, _ALL, slice(1, None))), k.mul(factors, tail))
        u = k.cat(rows, 1)
        x = k.solve_triangular(k.getitem(u, (_ALL, _ALL, slice(0, n))), k.getitem(u, (_ALL, _ALL, slice(n, width))),
                               True, False)
        return k.reshape(x, b.shape), k.reshape(info, a.shape[:-2])
    return solve


def _synchronize(k):
    def synchronize(index):
        return None
    return synchronize


# optional kernel -> builder of its composition from other kernels (given the table)
# -- int8 (quantized inference) ---------------------------------------------------------------------------
_F64 = np.dtype("float64")
_F32 = np.dtype("float32")
_ROUNDER = 12582912.0  # 1.5 * 2**23: v + it - it rounds a float32 |v| <= 2**22 to an integer, half to even


def _centered(k, x, scale: float, zero_point: int):
    """``q(x) - zero_point`` as exact float64 integers, q(x) = clamp(rint(x / scale) + zero_point, -128, 127): the
    quantized kernels' one rounding rule, ONNX QuantizeLinear's (float32 division, round half to even)."""
    v = k.maximum(k.minimum(k.div(x, float(np.float32(scale))), 4194304.0), -4194304.0)  # beyond: saturates anyway
    r = k.sub(k.add(v, _ROUNDER), _ROUNDER)
    q = k.maximum(k.minimum(k.add(r, float(zero_point)), 127.0), -128.0)
    return k.cast(k.sub(q, float(zero_point)), _F64)


def _dequantized(k, acc, w_scale, bias, x_scale: float, axis_shape: tuple):
    """float32(acc) * (float32(x_scale) * w_scale) + bias, the scales and bias along ``axis_shape``."""
    s = k.reshape(k.mul(w_scale, float(np.float32(x_scale))), axis_shape)
    y = k.mul(k.cast(acc, _F32), s)
    return y if bias is None else k.add(y, k.reshape(bias, axis_shape))


def _quantized_linear(k):
    def quantized_linear(x, wq, w_scale, bias, x_scale, x_zero_point):
        lead, n_in, n_out = tuple(x.shape[:-1]), x.shape[-1], wq.shape[0]
        c = k.reshape(_centered(k, x, x_scale, x_zero_point), (_prod(lead), n_in))
        # float64 products of integers below 2**8 and 2**7, summed: exact while n_in < 2**38
        acc = k.matmul(c, k.permute(k.cast(wq, _F64), (1, 0)))
        return k.reshape(_dequantized(k, acc, w_scale, bias, x_scale, (n_out,)), (*lead, n_out))
    return quantized_linear


def _quantized_conv2d(k):
    def quantized_conv2d(x, wq, w_scale, bias, x_scale, x_zero_point, stride, padding, dilation, groups):
        n, _, o, rows, ks, oh, ow = conv_shape(x.shape, wq.shape, stride, padding, dilation)
        # centred, a padded position (real zero, quantized to the zero point) is 0: unfold's zero padding
        cols = k.unfold(_centered(k, x, x_scale, x_zero_point), ks, stride, padding, dilation)  # (N, C*kh*kw, L)
        cols = k.reshape(cols, (n, groups, rows, oh * ow))
        w = k.reshape(k.cast(wq, _F64), (1, groups, o // groups, rows))
        acc = k.reshape(k.matmul(w, cols), (n, o, oh, ow))  # exact, as quantized_linear's
        return _dequantized(k, acc, w_scale, bias, x_scale, (o, 1, 1))
    return quantized_conv2d


DEFAULTS = {
    "neg": _neg, "abs": _abs, "sign": _sign, "relu": _relu, "sigmoid": _sigmoid, "sub": _sub, "minimum": _minimum,
    "ne": _ne, "le": _le, "gt": _gt, "ge": _ge, "min": _min, "argmin": _argmin,
    "mean": _mean, "softmax": _softmax, "log_softmax": _log_softmax, "relu_backward": _relu_backward,
    "sgd_step": _sgd_step, "adam_step": _adam_step, "synchronize": _synchronize,
    "linear": _linear, "linear_backward": _linear_backward,
    "softmax_backward": _softmax_backward, "log_softmax_backward": _log_softmax_backward,
    "cross_entropy": _cross_entropy, "cross_entropy_backward": _cross_entropy_backward,
    "batch_norm": _batch_norm, "batch_norm_backward": _batch_norm_backward,
    "batch_norm_relu_pool": _batch_norm_relu_pool, "batch_norm_relu_pool_backward": _batch_norm_relu_pool_backward,
    "max_pool2d": _max_pool2d, "max_pool2d_backward": _max_pool2d_backward,
    "unfold_batch": _unfold_batch, "fold_batch": _fold_batch,
    "conv2d": _conv2d, "conv2d_input_grad": _conv2d_input_grad, "conv2d_weight_grad": _conv2d_weight_grad,
    "cholesky": _cholesky, "solve_triangular": _solve_triangular, "solve": _solve,
    "quantized_linear": _quantized_linear, "quantized_conv2d": _quantized_conv2d,
}
assert set(DEFAULTS) == set(OPTIONAL)


def compose(kernels, into=None):
    """``kernels`` (name -> callable, with every required kernel) completed with core's composition of each
    optional kernel they lack. Returns ``into`` (any object taking attributes; a new namespace by default)
    with one attribute per kernel; a composition looks up what it uses on it at call time."""
    missing = [name for name in REQUIRED if name not in kernels]
    if missing:
        raise ValueError(f"compose: kernels lack required ones: {', '.join(missing)}")
    table = into if into is not None else SimpleNamespace()
    for name, fn in kernels.items():
        setattr(table, name, fn)
    for name, build in DEFAULTS.items():
        if name not in kernels:
            setattr(table, name, build(table))
    return table


_reference = None


def reference():
    """Core's NumPy kernels completed with the compositions: the reference every backend is held to, and a
    fallback a host backend may call for what it does not do faster itself."""
    global _reference
    if _reference is None:
        from . import numpy_backend

        _reference = compose(numpy_backend.KERNELS)
    return _reference
