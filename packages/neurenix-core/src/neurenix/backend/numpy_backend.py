"""Core's NumPy implementation of the kernel set for device type ``cpu``.

It is the reference every backend is tested against and the fallback for ``cpu`` kernels that no
faster backend overrides. Buffers are NumPy arrays (or NumPy scalars for 0-d results).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .backend import Backend
from .hookspecs import hookimpl
from .kernels import out_size


def from_numpy(array, index):
    return array


def to_numpy(x):
    return np.asarray(x)


def full(shape, value, dtype, index):
    return np.full(shape, value, dtype)


def copy(x):
    return np.array(x, order="C")  # C-contiguous, whatever x's layout: C kernels take only such buffers


def cast(x, dtype):
    return x.astype(dtype)


_ZERO = {np.dtype(t): np.zeros((), t)[()] for t in (np.float32, np.float64, np.int64)}


def relu(x):
    return np.maximum(x, _ZERO[x.dtype])  # a same-dtype zero skips NumPy's Python-scalar promotion


def relu_backward(g, x):
    return np.where(x > 0, g, _ZERO[g.dtype])  # not g * (x > 0): a NaN gradient where x <= 0 gives 0


def sigmoid(x):
    # tanh form: no overflow warnings for large |x|, unlike 1 / (1 + exp(-x))
    return np.tanh(x * 0.5) * 0.5 + 0.5


# The ufuncs' own reduce methods and ndarray methods skip NumPy's Python-level wrappers (np.sum,
# np.reshape...), which cost more than the work itself on the small arrays meta-learning runs on.

_BOOL, _INT64 = np.dtype(bool), np.dtype(np.int64)
# positional arguments (x, axis, dtype, out, keepdims) are a little faster than keywords
_add_reduce, _max_reduce, _min_reduce = np.add.reduce, np.maximum.reduce, np.minimum.reduce


def sum(x, axes, keepdim):  # noqa: A001 - kernel names mirror the op names
    if x.dtype is _BOOL:
        x = x.astype(_INT64)  # add.reduce of bools would be a logical or
    return _add_reduce(x, axes, None, None, keepdim)


def mean(x, axes, keepdim):
    n = 1
    for a in axes:
        n *= x.shape[a]
    return np.true_divide(_add_reduce(x, axes, None, None, keepdim), n)


def max(x, axes, keepdim):  # noqa: A001
    return _max_reduce(x, axes, None, None, keepdim)


def min(x, axes, keepdim):  # noqa: A001
    return _min_reduce(x, axes, None, None, keepdim)


def argmax(x, axis, keepdim):
    return np.asarray(x).argmax(axis=axis, keepdims=keepdim)


def argmin(x, axis, keepdim):
    return np.asarray(x).argmin(axis=axis, keepdims=keepdim)


def reshape(x, shape):
    return x.reshape(shape)


def permute(x, axes):
    return x.transpose(axes)


def expand(x, shape):
    # a contiguous copy, broadcast by assignment: np.broadcast_to is Python-level stride tricks, 3x slower on
    # small arrays (8 -> 2.5 us for a 40x40 weight to 25 tasks) and slower on large ones too
    out = np.empty(shape, x.dtype)
    out[...] = x
    return out


def matmul(a, b):
    if a.ndim == 2 and b.ndim == 2:
        m, k, n = a.shape[0], a.shape[1], b.shape[1]
        if n > m and k >= n and a.flags.c_contiguous and b.T.flags.c_contiguous:
            # a @ B.T with both operands read along k (a conv's weight gradient, grad_out @ cols.T): OpenBLAS
            # runs it 10-20% faster with the operand of more rows first (Conv-4: 19.5 -> 17.4 ms); the copy
            # back to row-major costs m*n, little next to the product's m*n*k
            return np.ascontiguousarray(np.dot(b.T, a.T).T)
        return np.dot(a, b)
    if a.ndim > 2 and b.ndim > 2 and b.strides[-2] == b.itemsize and a.size < b.size:
        # a stack times a stack of transposed views (a conv's weight gradient: grad_out @ cols.mT): NumPy
        # copies the larger operand to row-major; (b.mT @ a.mT).mT copies the smaller (20 -> 16 ms in Conv-4)
        return np.matmul(b.swapaxes(-1, -2), np.ascontiguousarray(a.swapaxes(-1, -2))).swapaxes(-1, -2)
    return np.matmul(a, b)


def getitem(x, key):
    return x[key]


def index_put(x, key, values, accumulate):
    out = np.array(x, copy=True)
    if not accumulate:
        out[key] = values
    elif any(isinstance(k, np.ndarray) for k in key):
        np.add.at(out, key, values)  # repeated indices add up
    else:
        out[key] += values
    return out


def cat(xs, axis):
    return np.concatenate(xs, axis=axis)


def pad(x, pads, value):
    return np.pad(x, pads, constant_values=value)


def unfold(x, kernel_size, stride, padding, dilation):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, c, h, w = x.shape
    oh, ow = out_size(h, kh, sh, 0, dh), out_size(w, kw, sw, 0, dw)
    s = x.strides
    windows = as_strided(x, (n, c, kh, kw, oh, ow), (s[0], s[1], s[2] * dh, s[3] * dw, s[2] * sh, s[3] * sw))
    return windows.reshape(n, c * kh * kw, oh * ow)


def fold(cols, output_size, kernel_size, stride, padding, dilation):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    h, w = output_size
    n = cols.shape[0]
    c = cols.shape[1] // (kh * kw)
    oh, ow = out_size(h, kh, sh, ph, dh), out_size(w, kw, sw, pw, dw)
    cols = cols.reshape(n, c, kh, kw, oh, ow)
    out = np.zeros((n, c, h + 2 * ph, w + 2 * pw), cols.dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i * dh:i * dh + sh * oh:sh, j * dw:j * dw + sw * ow:sw] += cols[:, :, i, j]
    return out[:, :, ph:ph + h, pw:pw + w]


# linear algebra: LAPACK through numpy.linalg, which raises for a whole batch where the contract reports each matrix


def cholesky(a):
    try:
        low = np.linalg.cholesky(a)
    except np.linalg.LinAlgError:  # a matrix of the batch is not positive-definite: find which, and where
        return _cholesky_each(a)
    nan = np.isnan(np.diagonal(low, 0, -2, -1))  # a NaN pivot, which LAPACK (OpenBLAS) goes on through
    return low, np.where(nan.any(-1), nan.argmax(-1) + 1, 0).astype(np.int64)


def _cholesky_each(a):
    low, info = np.full(a.shape, np.nan, a.dtype), np.zeros(a.shape[:-2], np.int64)
    for i in np.ndindex(*a.shape[:-2]):
        info[i] = _failed_minor(a[i])
        if not info[i]:
            low[i] = np.linalg.cholesky(a[i])
    return low, info


def _failed_minor(a) -> int:
    """The order of the first leading minor of the matrix ``a`` that is not positive-definite (a pivot <= 0 or
    NaN), or 0."""
    for order in range(1, a.shape[-1] + 1):
        try:
            if np.isnan(np.linalg.cholesky(a[:order, :order])[-1, -1]):
                return order
        except np.linalg.LinAlgError:
            return order
    return 0


def solve(a, b):
    try:
        return np.linalg.solve(a, b), np.zeros(a.shape[:-2], np.int64)
    except np.linalg.LinAlgError:  # a singular matrix in the batch: find which
        x, info = np.full(b.shape, np.nan, b.dtype), np.zeros(a.shape[:-2], np.int64)
        for i in np.ndindex(*a.shape[:-2]):
            try:
                x[i] = np.linalg.solve(a[i], b[i])
            except np.linalg.LinAlgError:
                info[i] = 1
        return x, info


def solve_triangular(a, b, upper, unitriangular):
    # NumPy has no triangular solver (np.linalg.solve would read the other triangle and refuse a zero pivot):
    # substitution, one row at a time over the whole batch, taking each solved row off the rows left
    x = np.array(b, copy=True)
    n = a.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero pivot gives inf or NaN, as the contract says
        for i in range(n - 1, -1, -1) if upper else range(n):
            if not unitriangular:
                x[..., i, :] /= a[..., i, i, None]
            rest = slice(0, i) if upper else slice(i + 1, n)
            x[..., rest, :] -= a[..., rest, i, None] * x[..., i, None, :]
    return x


KERNELS = {
    "from_numpy": from_numpy, "to_numpy": to_numpy, "full": full, "copy": copy, "cast": cast,
    "neg": np.negative, "abs": np.absolute, "sign": np.sign, "relu": relu, "exp": np.exp, "log": np.log,
    "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos, "tanh": np.tanh, "sigmoid": sigmoid,
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide, "pow": np.power,
    "maximum": np.maximum, "minimum": np.minimum,
    "eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
    "ge": np.greater_equal, "where": np.where,
    "sum": sum, "mean": mean, "max": max, "min": min, "argmax": argmax, "argmin": argmin,
    "reshape": reshape, "permute": permute, "expand": expand,
    "getitem": getitem, "index_put": index_put, "cat": cat, "pad": pad,
    "matmul": matmul, "unfold": unfold, "fold": fold, "relu_backward": relu_backward,
    "cholesky": cholesky, "solve": solve, "solve_triangular": solve_triangular,
}


class NumpyBackend(Backend):
    """The reference kernels: plain NumPy, always available, lowest priority for ``cpu``."""

    device_type = "cpu"
    name = "numpy"
    priority = 0
    dtypes = ("float32", "float64", "int64", "bool", "int8")

    def device_name(self, index: int) -> str:
        return f"host CPU (NumPy {np.__version__})"

    def preference(self, index: int) -> int:
        return 1

    def kernels(self):
        return KERNELS


@hookimpl
def neurenix_backends():
    return [NumpyBackend()]
