"""Op cases: each a Tensor-level function, its NumPy reference, input shapes and dtypes.

Core's own tests and the backend conformance suite both run these, so every op is checked the same
way on every backend: values against NumPy in each dtype, gradients against finite differences.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..linalg import cholesky, inv, solve, solve_triangular
from ..nn import functional as F
from ..ops import cat, cdist, einsum, relu_backward, stack, where
from ..tensor import Tensor

FLOATS = ("float32", "float64")
NUMERIC = ("float32", "float64", "int64")
ALL = ("float32", "float64", "int64", "bool")


@dataclass(frozen=True)
class OpCase:
    """``fn(*tensors)`` must equal ``ref(*arrays)`` for inputs of ``shapes`` in each of ``dtypes``.

    ``domain`` shapes the random inputs: "real" (standard normal), "positive" (in [0.5, 2.5]),
    "unit" (in (-0.9, 0.9)), "distinct" (a shuffled grid: no ties, well apart), "nan" (standard normal
    with NaNs, at other places in each input, some rows with several) or "zeros" (standard normal with exact
    zeros where "nan" puts NaNs: some rows with one, some with several). ``grad`` says whether
    the op is differentiable (checked in float64, first and second order). ``out_dtype`` maps the input
    dtype name to the expected output dtype name where it is not NumPy's.
    """

    name: str
    fn: Callable
    ref: Callable
    shapes: tuple
    dtypes: tuple = FLOATS
    domain: str = "real"
    grad: bool = True
    out_dtype: Callable | None = None
    extra: tuple = ()  # non-tensor trailing arguments: (name, numpy array builder) pairs handled by the case itself
    zero_shapes: tuple = ()  # input shapes with an empty axis the automatic zero-size variants cannot find

    def __str__(self) -> str:
        return self.name

    def inputs(self, dtype: str, shapes: tuple | None = None) -> list[np.ndarray]:
        """Deterministic NumPy inputs for this case in ``dtype`` (of ``shapes`` instead of the case's own)."""
        rng = np.random.default_rng(zlib.crc32(self.name.encode()))
        return [_draw(rng, s, dtype, self.domain, k) for k, s in enumerate(shapes or self.shapes)]


def _special_positions(n: int, k: int) -> list[int]:
    """Where input ``k`` of a "nan" ("zeros") case holds NaN (0): a few fixed places (two adjacent, so that a row
    holds several) and a sparse spread, shifted per input so that binary ops meet NaN on either side."""
    return sorted({i for i in (1 + k, 6 + 2 * k, 7 + k) if i < n} | set(range(5 + k, n, 11)))


def _draw(rng, shape, dtype: str, domain: str, k: int = 0) -> np.ndarray:
    if dtype == "bool":
        return rng.random(shape) > 0.5
    if dtype == "int64":
        lo = 1 if domain == "positive" else -4
        return rng.integers(lo, 5, shape).astype(np.int64)
    n = int(np.prod(shape))
    if domain == "positive":
        x = rng.uniform(0.5, 2.5, n)
    elif domain == "unit":
        x = rng.uniform(-0.9, 0.9, n)
    elif domain == "distinct":
        x = (rng.permutation(n) - n / 2) * 0.25 + rng.uniform(-0.05, 0.05, n)
    else:
        x = rng.standard_normal(n)
        if domain in ("nan", "zeros"):
            x[_special_positions(n, k)] = np.nan if domain == "nan" else 0.0
    return x.reshape(shape).astype(dtype)


# -- NumPy references for the layered ops -------------------------------------------------------


def _window_out(size: int, k: int, stride: int, padding: int, dilation: int = 1) -> int:
    """Windows along an axis, refusing (as PyTorch does) a kernel of size 0 or one larger than the padded
    input: such a call is an error, not an empty result."""
    out = (size + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    if k < 1 or out < 1:
        raise ValueError(f"kernel {k} (dilation {dilation}) does not fit an axis of {size} padded by {padding}")
    return out


def _np_unfold(x, k, stride=1, padding=0, dilation=1):
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = _window_out(h, k, stride, padding, dilation), _window_out(w, k, stride, padding, dilation)
    out = np.zeros((n, c, k, k, oh, ow), x.dtype)
    for i in range(k):
        for j in range(k):
            for a in range(oh):
                for b in range(ow):
                    out[:, :, i, j, a, b] = xp[:, :, a * stride + i * dilation, b * stride + j * dilation]
    return out.reshape(n, c * k * k, oh * ow)


def _np_fold(cols, size, k, stride=1, padding=0, dilation=1):
    n, ckk, _ = cols.shape
    c = ckk // (k * k)
    h, w = size
    oh, ow = _window_out(h, k, stride, padding, dilation), _window_out(w, k, stride, padding, dilation)
    cols = cols.reshape(n, c, k, k, oh, ow)
    out = np.zeros((n, c, h + 2 * padding, w + 2 * padding), cols.dtype)
    for i in range(k):
        for j in range(k):
            for a in range(oh):
                for b in range(ow):
                    out[:, :, a * stride + i * dilation, b * stride + j * dilation] += cols[:, :, i, j, a, b]
    return out[:, :, padding:padding + h, padding:padding + w]


def _np_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Direct cross-correlation; a 5-D weight (T, O, C/groups, kh, kw) convolves T blocks of rows, one each."""
    if w.ndim == 5:
        if w.shape[0] == 0:
            raise ValueError("a per-task weight of no tasks")
        blocks = np.split(x, w.shape[0])
        return np.concatenate([_np_conv2d(xb, w[t], None if b is None else b[t], stride, padding, dilation, groups)
                               for t, xb in enumerate(blocks)])
    n, _, h, wd = x.shape
    o, cg, k, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = _window_out(h, k, stride, padding, dilation), _window_out(wd, kw, stride, padding, dilation)
    out = np.zeros((n, o, oh, ow), np.result_type(x, w))
    og = o // groups
    for a in range(oh):
        for bb in range(ow):
            patch = xp[:, :, a * stride:a * stride + dilation * (k - 1) + 1:dilation,
                       bb * stride:bb * stride + dilation * (kw - 1) + 1:dilation]
            for gi in range(groups):
                out[:, gi * og:(gi + 1) * og, a, bb] = np.einsum(
                    "nchw,ochw->no", patch[:, gi * cg:(gi + 1) * cg], w[gi * og:(gi + 1) * og])
    return out if b is None else out + b.reshape(1, o, 1, 1)


def _np_conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Direct transposed convolution: each input pixel scatters its kernel-weighted copy into the output."""
    n, c, h, wd = x.shape
    _, og, k, kw = w.shape
    cg = c // groups
    oh = (h - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1
    ow = (wd - 1) * stride - 2 * padding + dilation * (kw - 1) + output_padding + 1
    if oh <= 0 or ow <= 0:
        raise ValueError(f"no output ({oh}, {ow})")
    canvas = np.zeros((n, og * groups, oh + 2 * padding + stride * h + dilation * k,
                       ow + 2 * padding + stride * wd + dilation * kw), np.result_type(x, w))
    for i in range(h):
        for j in range(wd):
            for a in range(k):
                for bb in range(kw):
                    for g in range(groups):
                        canvas[:, g * og:(g + 1) * og, i * stride + a * dilation, j * stride + bb * dilation] += \
                            x[:, g * cg:(g + 1) * cg, i, j] @ w[g * cg:(g + 1) * cg, :, a, bb]
    out = canvas[:, :, padding:padding + oh, padding:padding + ow]
    return out if b is None else out + b.reshape(1, -1, 1, 1)


def _np_recurrence(mode: str, x, w_ih, w_hh, b_ih, b_hh, batch_first: bool = False):
    """A one-layer LSTM or GRU over ``x`` (time-major unless ``batch_first``) from zero states: the outputs."""
    xs = x.swapaxes(0, 1) if batch_first else x
    h = np.zeros((xs.shape[1], w_hh.shape[1]), x.dtype)
    c, outs = np.zeros_like(h), []
    for step in xs:
        gi, gh = step @ w_ih.T + b_ih, h @ w_hh.T + b_hh
        if mode == "LSTM":
            i, f, g, o = np.split(gi + gh, 4, axis=-1)
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
        else:
            (ir, iz, i_n), (hr, hz, h_n) = np.split(gi, 3, axis=-1), np.split(gh, 3, axis=-1)
            r, z = _sigmoid(ir + hr), _sigmoid(iz + hz)
            n = np.tanh(i_n + r * h_n)
            h = (1 - z) * n + z * h
        outs.append(h)
    out = np.stack(outs)
    return out.swapaxes(0, 1) if batch_first else out


def _recurrence(mode: str, batch_first: bool = False) -> Callable:
    """``fn(x, w_ih, w_hh, b_ih, b_hh)``: a one-layer nn.LSTM / nn.GRU with these weights (functional_call), its
    outputs. The layer is made once, without moving neurenix's generator (its own weights are never used)."""
    from .. import nn, random
    from ..func import functional_call

    state = random.get_rng_state()
    layer = (nn.LSTM if mode == "LSTM" else nn.GRU)(3, 2, batch_first=batch_first)
    random.set_rng_state(state)

    def fn(x, w_ih, w_hh, b_ih, b_hh):
        weights = {"weight_ih_l0": w_ih, "weight_hh_l0": w_hh, "bias_ih_l0": b_ih, "bias_hh_l0": b_hh}
        return functional_call(layer, weights, (x,))[0]
    return fn


def _np_pool(x, k, stride, reduce, padding=0, pad_value=0.0):
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), constant_values=pad_value)
    oh, ow = _window_out(h, k, stride, padding), _window_out(w, k, stride, padding)
    out = np.zeros((n, c, oh, ow), x.dtype)
    for a in range(oh):
        for b in range(ow):
            out[:, :, a, b] = reduce(xp[:, :, a * stride:a * stride + k, b * stride:b * stride + k], axis=(2, 3))
    return out


def _np_log_softmax(x, axis):
    if x.size == 0:  # PyTorch: an empty result (nothing to normalise), not an error
        return x.copy()
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _np_batch_norm(x, w, b, eps=1e-5):
    if x.size <= x.shape[1]:  # PyTorch refuses training statistics of one value (or none) per channel
        raise ValueError(f"batch norm in training needs more than one value per channel, got {x.shape}")
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mu, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w.reshape(shape) + b.reshape(shape)


def _setitem(a, b):
    out = a * 1.0
    out[1] = b * 2.0  # recorded: gradients reach b, and a except in row 1
    return out


def _np_setitem(a, b):
    out = a.copy()
    out[1] = b * 2
    return out


def _where(a, b):
    return where(a > 0, a, b)


_LABELS = np.array([2, 0, 1, 2])  # class indices for 4 samples of 3 classes
_ONE_HOT = np.eye(3)[_LABELS]


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _int64(d):
    return "int64"


def _bool(d):
    return "bool"


def _to_float(d):
    return "float32" if d in ("int64", "bool") else d


# -- NumPy references for the ops composed for PyTorch compatibility ---------------------------------

def _np_erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x).astype(x.dtype)


def _np_gelu(x):
    return (x * 0.5 * (1 + _np_erf(x / math.sqrt(2)))).astype(x.dtype)


def _np_gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def _np_norm(x, p, axis=None, keepdims=False):
    """The vector p-norm by its definition (p > 0), over ``axis`` (all elements if None)."""
    if p == math.inf:
        return np.abs(x).max(axis=axis, keepdims=keepdims)
    if p == -math.inf:
        return np.abs(x).min(axis=axis, keepdims=keepdims)
    return (np.abs(x) ** p).sum(axis=axis, keepdims=keepdims) ** (1 / p)


def _np_cdist(a, b, p):
    return _np_norm(a[..., :, None, :] - b[..., None, :, :], p, -1)


def _np_scatter(x, axis, index, src, add=False):
    out = x.copy()
    if add:
        idx = np.indices(index.shape)
        idx[axis] = index
        np.add.at(out, tuple(idx), src[tuple(slice(0, n) for n in index.shape)])
    else:
        np.put_along_axis(out, index, src[tuple(slice(0, n) for n in index.shape)], axis)
    return out


def _np_image(x):
    """``x`` if it has pixels: PyTorch refuses to resize or adaptively pool an empty H or W."""
    if 0 in x.shape[2:]:
        raise ValueError(f"resizing needs a non-empty H and W, got {x.shape}")
    return x


def _np_nearest(x, oh, ow):
    """Nearest-neighbour resizing with PyTorch's (legacy 'nearest') source index floor(dst * in / out)."""
    x = _np_image(x)
    rows = np.floor(np.arange(oh) * (x.shape[2] / oh)).astype(int)
    cols = np.floor(np.arange(ow) * (x.shape[3] / ow)).astype(int)
    return x[:, :, rows][:, :, :, cols]


def _np_source(n_in, n_out, align_corners):
    """Per output index along an axis: the two source indices and the weight of the second."""
    dst = np.arange(n_out, dtype=np.float64)
    if align_corners:
        src = dst * (n_in - 1) / max(n_out - 1, 1)
    else:
        src = np.clip((dst + 0.5) * n_in / n_out - 0.5, 0, None)
    lo = np.minimum(np.floor(src).astype(int), n_in - 1)
    return lo, np.minimum(lo + 1, n_in - 1), src - lo


def _np_bilinear(x, oh, ow, align_corners=False):
    """Bilinear resizing pixel by pixel: a weighted sum of the four source neighbours."""
    x = _np_image(x)
    r0, r1, fr = _np_source(x.shape[2], oh, align_corners)
    c0, c1, fc = _np_source(x.shape[3], ow, align_corners)
    fr, fc = fr[:, None], fc[None, :]
    out = ((1 - fr) * (1 - fc) * x[:, :, r0][:, :, :, c0] + (1 - fr) * fc * x[:, :, r0][:, :, :, c1]
           + fr * (1 - fc) * x[:, :, r1][:, :, :, c0] + fr * fc * x[:, :, r1][:, :, :, c1])
    return out.astype(x.dtype)


def _np_adaptive_avg(x, oh, ow):
    n, c, h, w = _np_image(x).shape
    out = np.zeros((n, c, oh, ow), x.dtype)
    for i in range(oh):
        for j in range(ow):
            rows = slice(i * h // oh, -(-(i + 1) * h // oh))
            cols = slice(j * w // ow, -(-(j + 1) * w // ow))
            out[:, :, i, j] = x[:, :, rows, cols].mean(axis=(2, 3))
    return out


def _np_topk(x, k, axis, largest=True):
    """(values, indices) of the ``k`` largest (smallest) along ``axis``; k beyond the axis is an error."""
    if k > x.shape[axis]:
        raise ValueError(f"k {k} is larger than axis {axis} of {x.shape}")
    order = np.argsort(-x if largest else x, axis, kind="stable")
    idx = np.take(order, np.arange(k), axis)
    return np.take_along_axis(x, idx, axis), idx


def _np_split(x, sizes, axis):
    """``x`` cut into pieces of ``sizes`` along ``axis``; sizes must add up to the axis."""
    if sum(sizes) != x.shape[axis]:
        raise ValueError(f"sections {sizes} do not add up to axis {axis} of {x.shape}")
    return np.split(x, np.cumsum(sizes)[:-1], axis)


def _np_cosine(a, b, axis, eps=1e-8):
    return (a * b).sum(axis) / np.maximum(_np_norm(a, 2, axis) * _np_norm(b, 2, axis), eps)


def _np_cross_entropy(x, labels, weight=None, ignore_index=-100, reduction="mean"):
    """PyTorch's weighted cross-entropy of class indices: ignored targets count for nothing, and 'mean'
    divides by the summed weight of the targets counted."""
    keep = labels != ignore_index
    rows, cls = np.arange(len(labels))[keep], labels[keep]
    w = np.ones(x.shape[1], x.dtype) if weight is None else weight.astype(x.dtype)
    terms = -w[cls] * _np_log_softmax(x, 1)[rows, cls]
    return terms.sum() if reduction == "sum" else terms.sum() / w[cls].sum()


def _with_infs(a):
    return where(a > 1, math.inf, where(a < -1, -math.inf, a))


def _np_with_infs(a):
    return np.where(a > 1, np.inf, np.where(a < -1, -np.inf, a)).astype(a.dtype)


def _scaled_cat(pieces, axis):
    """The pieces of a split joined again, each scaled by its position (so each is checked where it lands)."""
    return cat([p * (k + 1) for k, p in enumerate(pieces)], axis)


def _np_scaled_cat(pieces, axis):
    return np.concatenate([p * (k + 1) for k, p in enumerate(pieces)], axis)


def _np_odd(b):
    return b * 2 + 1  # an odd int64 divisor (never 0) from an input in [-4, 4]


def _regular(a):
    """A well-conditioned matrix from a standard normal one: ``a + 4 I``."""
    return a + Tensor(4 * np.eye(a.shape[-1]), dtype=a.dtype)


def _np_regular(a):
    return a + 4 * np.eye(a.shape[-1], dtype=a.dtype)


def _spd(a):
    """A symmetric positive-definite matrix from any (..., n, m) one: ``a a^T + 4 I``."""
    return _regular(a @ a.mT)


def _np_spd(a):
    return _np_regular(a @ a.swapaxes(-1, -2))


def _np_triangular(a, upper, unit=False):
    t = np.triu(a) if upper else np.tril(a)
    if unit:
        i = np.arange(a.shape[-1])
        t[..., i, i] = 1
    return t


_W = np.array([0.5, 2.0, 1.5])  # class weights for 3 classes
_LABELS_IGNORED = np.array([2, -100, 1, 2])
_SCATTER = np.array([[0, 3], [2, 1], [1, 0]])  # positions in (3, 4) along dim 1, none repeated in a row
_SCATTER_REPEATS = np.array([[0, 3], [2, 2], [1, 1]])  # rows 1 and 2 name one position twice (added up)
_MASK = np.array([True, False, False, True])
_MASK_2D = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, False]])


def _np_median(a, axis=None, keepdims=False):
    """PyTorch's lower median (of an even count, the smaller middle value), NaN where the entries hold one;
    of all entries if ``axis`` is None (NaN for none, in a float dtype)."""
    if axis is None:
        if a.size == 0:
            if a.dtype.kind != "f":
                raise ValueError("an empty integer array has no median")
            return np.array(np.nan, a.dtype)
        a, axis = a.reshape(-1), 0
    if a.shape[axis] == 0:
        raise IndexError(f"no median along the empty axis {axis} of {a.shape}")
    out = np.take(np.sort(a, axis), (a.shape[axis] - 1) // 2, axis)
    if a.dtype.kind == "f":
        out = np.where(np.isnan(a).any(axis), np.nan, out).astype(a.dtype)
    return np.expand_dims(out, axis) if keepdims else out


def _np_median_index(a, axis):
    """Where along ``axis`` the median lies (of entries without ties), or the first NaN where there is one."""
    nan = np.isnan(a)
    at = np.argmax(a == np.expand_dims(_np_median(a, axis), axis), axis)
    return np.where(nan.any(axis), np.argmax(nan, axis), at)


# -- the cases ----------------------------------------------------------------------------------

C = OpCase
CASES: list[OpCase] = [
    # elementwise unary
    C("neg", lambda a: -a, np.negative, ((3, 4),), NUMERIC),
    C("abs", lambda a: a.abs(), np.abs, ((3, 4),), NUMERIC, "distinct"),
    C("sign", lambda a: a.sign(), np.sign, ((3, 4),), NUMERIC, "distinct", grad=False),
    C("relu", lambda a: a.relu(), lambda a: np.maximum(a, 0), ((3, 4),), NUMERIC, "distinct"),
    C("exp", lambda a: a.exp(), np.exp, ((3, 4),)),
    C("exp_int", lambda a: a.exp(), lambda a: np.exp(a).astype(np.float32), ((5,),), ("int64",), grad=False,
      out_dtype=_to_float),
    C("log", lambda a: a.log(), np.log, ((3, 4),), domain="positive"),
    C("sqrt", lambda a: a.sqrt(), np.sqrt, ((3, 4),), domain="positive"),
    C("rsqrt", lambda a: a.rsqrt(), lambda a: 1 / np.sqrt(a), ((3, 4),), domain="positive"),
    C("sin", lambda a: a.sin(), np.sin, ((3, 4),)),
    C("cos", lambda a: a.cos(), np.cos, ((3, 4),)),
    C("tanh", lambda a: a.tanh(), np.tanh, ((3, 4),)),
    C("sigmoid", lambda a: a.sigmoid(), _sigmoid, ((3, 4),)),
    C("sigmoid_large", lambda a: (a * 60).sigmoid(), lambda a: _sigmoid(a * 60), ((8,),), grad=False),
    C("square", lambda a: a.square(), np.square, ((3, 4),), NUMERIC),
    C("clamp", lambda a: a.clamp(-0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5), ((3, 4),), domain="distinct"),
    C("clamp_min", lambda a: a.clamp(min=0.1), lambda a: np.maximum(a, 0.1), ((3, 4),), domain="distinct"),
    # elementwise binary, with broadcasting and scalars
    C("add", lambda a, b: a + b, np.add, ((3, 4), (3, 4)), ALL),
    C("add_bcast_row", lambda a, b: a + b, np.add, ((3, 4), (4,)), NUMERIC),
    C("add_bcast_col", lambda a, b: a + b, np.add, ((3, 1), (1, 4)), NUMERIC),
    C("add_bcast_3d", lambda a, b: a + b, np.add, ((2, 1, 4), (3, 1)), NUMERIC),
    C("add_scalar", lambda a: a + 2, lambda a: a + a.dtype.type(2), ((3, 4),), NUMERIC),
    C("radd_scalar", lambda a: 2.5 + a, lambda a: 2.5 + a, ((3, 4),)),
    C("sub", lambda a, b: a - b, np.subtract, ((3, 4), (4,)), NUMERIC),
    C("rsub_scalar", lambda a: 1 - a, lambda a: 1 - a, ((3, 4),), NUMERIC),
    C("mul", lambda a, b: a * b, np.multiply, ((3, 4), (3, 4)), ALL),
    C("mul_bcast", lambda a, b: a * b, np.multiply, ((2, 3, 4), (3, 1)), NUMERIC),
    C("mul_scalar", lambda a: a * 3, lambda a: a * a.dtype.type(3), ((3, 4),), NUMERIC),
    C("div", lambda a, b: a / b, np.divide, ((3, 4), (3, 4)), domain="positive"),
    C("div_bcast", lambda a, b: a / b, np.divide, ((3, 4), (1, 4)), domain="positive"),
    C("div_int", lambda a, b: a / b, lambda a, b: (a / b).astype(np.float32), ((3, 4), (3, 4)), ("int64",),
      "positive", grad=False, out_dtype=_to_float),
    C("rdiv_scalar", lambda a: 2 / a, lambda a: 2 / a, ((3, 4),), domain="positive"),
    C("pow_scalar", lambda a: a ** 3, lambda a: a ** 3, ((3, 4),)),
    C("pow_fractional", lambda a: a ** 1.5, lambda a: a ** 1.5, ((3, 4),), domain="positive"),
    C("pow_tensor", lambda a, b: a ** b, np.power, ((3, 4), (3, 4)), domain="positive"),
    C("rpow_scalar", lambda a: 2 ** a, lambda a: 2.0 ** a, ((3, 4),)),
    C("maximum", lambda a, b: a.maximum(b), np.maximum, ((3, 4), (3, 4)), NUMERIC, "distinct"),
    C("minimum_bcast", lambda a, b: a.minimum(b), np.minimum, ((3, 4), (4,)), NUMERIC, "distinct"),
    C("eq", lambda a, b: a == b, np.equal, ((3, 4), (3, 4)), ALL, grad=False),
    C("ne_scalar", lambda a: a != 1, lambda a: a != 1, ((3, 4),), NUMERIC, grad=False),
    C("lt", lambda a, b: a < b, np.less, ((3, 4), (4,)), NUMERIC, grad=False),
    C("le", lambda a, b: a <= b, np.less_equal, ((3, 4), (3, 4)), NUMERIC, grad=False),
    C("gt_scalar", lambda a: a > 0, lambda a: a > 0, ((3, 4),), NUMERIC, grad=False),
    C("ge", lambda a, b: a >= b, np.greater_equal, ((3, 1), (1, 4)), NUMERIC, grad=False),
    C("logical_not", lambda a: ~a, np.logical_not, ((3, 4),), ("bool",), grad=False),
    C("where", _where, lambda a, b: np.where(a > 0, a, b), ((3, 4), (3, 4))),
    C("where_scalar", lambda a: _where(a, 0.0), lambda a: np.where(a > 0, a, 0.0).astype(a.dtype), ((3, 4),)),
    C("cast_float64", lambda a: a.double(), lambda a: a.astype(np.float64), ((3, 4),), ALL,
      out_dtype=lambda d: "float64"),
    C("cast_int64", lambda a: a.long(), lambda a: a.astype(np.int64), ((3, 4),), ALL, grad=False,
      out_dtype=lambda d: "int64"),
    C("cast_bool", lambda a: a.bool(), lambda a: a.astype(bool), ((3, 4),), ALL, grad=False,
      out_dtype=lambda d: "bool"),
    # reductions
    C("sum", lambda a: a.sum(), np.sum, ((3, 4),), NUMERIC),
    C("sum_bool", lambda a: a.sum(), lambda a: np.sum(a).astype(np.int64), ((3, 4),), ("bool",), grad=False,
      out_dtype=lambda d: "int64"),
    C("sum_dim", lambda a: a.sum(1), lambda a: a.sum(1), ((3, 4, 5),), NUMERIC),
    C("sum_dims_keepdim", lambda a: a.sum((0, 2), keepdim=True), lambda a: a.sum((0, 2), keepdims=True),
      ((3, 4, 5),), NUMERIC),
    C("sum_negdim", lambda a: a.sum(-1), lambda a: a.sum(-1), ((3, 4),), NUMERIC),
    C("mean", lambda a: a.mean(), np.mean, ((3, 4),)),
    C("mean_dim_keepdim", lambda a: a.mean(0, keepdim=True), lambda a: a.mean(0, keepdims=True), ((3, 4),)),
    C("mean_int", lambda a: a.mean(), lambda a: np.float32(a.mean()), ((3, 4),), ("int64",), grad=False,
      out_dtype=_to_float),
    C("amax", lambda a: a.amax(), np.max, ((3, 4),), NUMERIC, "distinct"),
    C("max_dim_values", lambda a: a.max(dim=1).values, lambda a: a.max(1), ((3, 4),), NUMERIC, "distinct"),
    C("max_dim_indices", lambda a: a.max(dim=1).indices, lambda a: a.argmax(1), ((3, 4),), NUMERIC, "distinct",
      grad=False, out_dtype=lambda d: "int64"),
    C("amin_keepdim", lambda a: a.amin(0, keepdim=True), lambda a: a.min(0, keepdims=True), ((3, 4),), NUMERIC,
      "distinct"),
    C("max_ties", lambda a: (a * 0).amax(1), lambda a: (a * 0).max(1), ((2, 3),), grad=False),
    C("argmax", lambda a: a.argmax(dim=1), lambda a: a.argmax(1), ((3, 4),), NUMERIC, "distinct", grad=False,
      out_dtype=lambda d: "int64"),
    C("argmax_flat", lambda a: a.argmax(), lambda a: np.int64(a.argmax()), ((3, 4),), NUMERIC, "distinct",
      grad=False, out_dtype=lambda d: "int64"),
    C("argmin_keepdim", lambda a: a.argmin(0, keepdim=True), lambda a: a.argmin(0, keepdims=True), ((3, 4),),
      NUMERIC, "distinct", grad=False, out_dtype=lambda d: "int64"),
    C("var", lambda a: a.var(), lambda a: a.var(ddof=1), ((3, 4),)),
    C("var_dim_biased", lambda a: a.var(1, unbiased=False), lambda a: a.var(1), ((3, 4),)),
    C("std_dim", lambda a: a.std(0, keepdim=True), lambda a: a.std(0, ddof=1, keepdims=True), ((3, 4),)),
    C("logsumexp", lambda a: a.logsumexp(1), lambda a: np.log(np.exp(a).sum(1)), ((3, 4),)),
    C("softmax", lambda a: a.softmax(1), lambda a: np.exp(_np_log_softmax(a, 1)), ((3, 4),)),
    C("softmax_dim0", lambda a: a.softmax(0), lambda a: np.exp(_np_log_softmax(a, 0)), ((3, 4),)),
    C("log_softmax", lambda a: a.log_softmax(-1), lambda a: _np_log_softmax(a, -1), ((3, 4),)),
    C("log_softmax_large", lambda a: (a * 100).log_softmax(1), lambda a: _np_log_softmax(a * 100, 1), ((2, 5),),
      grad=False),
    # movement
    C("reshape", lambda a: a.reshape(4, -1), lambda a: a.reshape(4, -1), ((2, 3, 2),), ALL),
    C("permute", lambda a: a.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1), ((2, 3, 4),), ALL),
    C("transpose", lambda a: a.transpose(0, 1), lambda a: a.T, ((3, 4),), ALL),
    C("T", lambda a: a.T, lambda a: a.T, ((3, 4),), NUMERIC),
    C("expand", lambda a: a.expand(2, 3, 4), lambda a: np.broadcast_to(a, (2, 3, 4)), ((3, 1),), ALL),
    C("unsqueeze_squeeze", lambda a: a.unsqueeze(1).squeeze(), lambda a: a, ((3, 4),), NUMERIC),
    C("flatten", lambda a: a.flatten(1), lambda a: a.reshape(a.shape[0], a.shape[1] * a.shape[2]), ((2, 3, 4),),
      NUMERIC),
    C("unflatten", lambda a: a.unflatten(1, (2, 3)), lambda a: a.reshape(4, 2, 3), ((4, 6),), NUMERIC),
    C("clone", lambda a: a.clone() * 1, lambda a: a.copy(), ((3, 4),), ALL[:3]),
    C("getitem_int", lambda a: a[1], lambda a: a[1], ((3, 4),), ALL),
    C("getitem_slices", lambda a: a[1:, ::2], lambda a: a[1:, ::2], ((3, 5),), ALL),
    C("getitem_negative_step", lambda a: a[::-1, 1], lambda a: a[::-1, 1], ((3, 4),), NUMERIC),
    C("getitem_none_ellipsis", lambda a: a[None, ..., -1], lambda a: a[None, ..., -1], ((2, 3, 4),), NUMERIC),
    C("getitem_int_array", lambda a: a[Tensor([2, 0, 2])], lambda a: a[[2, 0, 2]], ((3, 4),), NUMERIC),
    C("getitem_two_arrays", lambda a: a[Tensor([0, 2]), Tensor([1, 3])], lambda a: a[[0, 2], [1, 3]], ((3, 4),),
      NUMERIC),
    C("getitem_bool_mask", lambda a: a[a.detach() > 0], lambda a: a[a > 0], ((3, 4),), NUMERIC),
    C("gather", lambda a: a.gather(1, Tensor([[0, 0], [1, 0], [3, 2]])),
      lambda a: np.take_along_axis(a, np.array([[0, 0], [1, 0], [3, 2]]), 1), ((3, 4),), NUMERIC),
    C("index_put", lambda a, v: a.index_put((Tensor([0, 2]),), v), lambda a, v: _np_put(a, [0, 2], v),
      ((3, 4), (2, 4)), NUMERIC),
    C("index_put_accumulate", lambda a, v: a.index_put((Tensor([1, 1]),), v, accumulate=True),
      lambda a, v: _np_put(a, [1, 1], v, True), ((3, 4), (2, 4)), NUMERIC),
    C("setitem", _setitem, lambda a, b: _np_setitem(a, b), ((3, 4), (4,))),
    C("cat", lambda a, b: cat([a, b], 1), lambda a, b: np.concatenate([a, b], 1), ((2, 3), (2, 2)), ALL),
    C("stack", lambda a, b: stack([a, b], 0), lambda a, b: np.stack([a, b]), ((2, 3), (2, 3)), ALL),
    C("pad", lambda a: F.pad(a, (1, 2, 0, 1), value=0.5),
      lambda a: np.pad(a, ((0, 1), (1, 2)), constant_values=0.5), ((2, 3),)),
    # linear algebra
    C("matmul", lambda a, b: a @ b, np.matmul, ((3, 4), (4, 5)), NUMERIC,
      zero_shapes=(((0, 4), (4, 5)), ((3, 0), (0, 5)), ((3, 4), (4, 0)))),
    C("matmul_batched", lambda a, b: a @ b, np.matmul, ((2, 3, 4), (2, 4, 5))),
    C("matmul_broadcast", lambda a, b: a @ b, np.matmul, ((2, 1, 3, 4), (3, 4, 2))),
    C("matmul_vector", lambda a, b: a @ b, np.matmul, ((3, 4), (4,))),
    C("matmul_vector_left", lambda a, b: a @ b, np.matmul, ((4,), (4, 3))),
    C("linear", lambda x, w, b: F.linear(x, w, b), lambda x, w, b: x @ w.T + b, ((5, 3), (4, 3), (4,)),
      zero_shapes=(((0, 3), (4, 3), (4,)), ((5, 0), (4, 0), (4,)), ((5, 3), (0, 3), (0,)))),
    C("linear_3d_input", lambda x, w: F.linear(x, w), lambda x, w: x @ w.T, ((2, 5, 3), (4, 3))),
    C("linear_batched_weights", lambda x, w, b: F.linear(x, w, b),
      lambda x, w, b: x @ w.transpose(0, 2, 1) + b[:, None, :], ((2, 5, 3), (2, 4, 3), (2, 4))),
    # (systems of 3: second-order finite differences grow with the square of the elements, and the GPU envs run
    # the column-by-column compositions through an emulator, three times over)
    C("linalg_inv", lambda a: inv(_regular(a)), lambda a: np.linalg.inv(_np_regular(a)), ((2, 3, 3),)),
    C("linalg_solve", lambda a, b: solve(_regular(a), b), lambda a, b: np.linalg.solve(_np_regular(a), b),
      ((2, 3, 3), (2, 3, 2)), zero_shapes=(((2, 0, 0), (2, 0, 3)),)),
    C("linalg_solve_vector_broadcast", lambda a, b: solve(_regular(a), b),
      lambda a, b: np.linalg.solve(_np_regular(a), b[:, None])[..., 0], ((2, 3, 3), (3,))),
    C("linalg_solve_left_false", lambda a, b: solve(_regular(a), b, left=False),
      lambda a, b: np.linalg.solve(_np_regular(a).swapaxes(-1, -2), b.swapaxes(-1, -2)).swapaxes(-1, -2),
      ((3, 3), (2, 2, 3))),
    C("linalg_solve_triangular", lambda a, b: solve_triangular(_regular(a), b, upper=True),
      lambda a, b: np.linalg.solve(_np_triangular(_np_regular(a), True), b), ((2, 3, 3), (2, 3, 2))),
    C("linalg_solve_triangular_right_unit", lambda a, b: solve_triangular(a, b, upper=False, left=False, unitriangular=True),
      lambda a, b: np.linalg.solve(_np_triangular(a, False, True).swapaxes(-1, -2), b.swapaxes(-1, -2)).swapaxes(-1, -2),
      ((3, 3), (2, 2, 3))),
    C("linalg_cholesky", lambda a: cholesky(_spd(a)), lambda a: np.linalg.cholesky(_np_spd(a)), ((2, 3, 3),),
      zero_shapes=(((2, 0, 0),),)),
    C("linalg_cholesky_upper", lambda a: cholesky(_spd(a), upper=True),
      lambda a: np.linalg.cholesky(_np_spd(a)).swapaxes(-1, -2), ((3, 2),)),
    # windows, convolution, pooling
    C("unfold", lambda a: F.unfold(a, 2), lambda a: _np_unfold(a, 2), ((2, 2, 4, 3),)),
    C("unfold_stride_pad_dilation", lambda a: F.unfold(a, 2, dilation=2, padding=1, stride=2),
      lambda a: _np_unfold(a, 2, 2, 1, 2), ((1, 2, 5, 5),)),
    C("fold", lambda c: F.fold(c, (4, 3), 2), lambda c: _np_fold(c, (4, 3), 2), ((2, 8, 6),)),
    C("fold_stride_pad", lambda c: F.fold(c, (5, 5), 3, padding=1, stride=2),
      lambda c: _np_fold(c, (5, 5), 3, 2, 1), ((1, 9, 9),)),
    C("conv2d", lambda x, w, b: F.conv2d(x, w, b, padding=1), lambda x, w, b: _np_conv2d(x, w, b, padding=1),
      ((2, 3, 5, 4), (4, 3, 3, 3), (4,)), zero_shapes=(((0, 3, 5, 4), (4, 3, 3, 3), (4,)),)),
    C("conv2d_stride", lambda x, w: F.conv2d(x, w, stride=2), lambda x, w: _np_conv2d(x, w, stride=2),
      ((1, 2, 5, 5), (3, 2, 2, 2))),
    C("conv2d_padding_2", lambda x, w: F.conv2d(x, w, padding=2), lambda x, w: _np_conv2d(x, w, padding=2),
      ((1, 1, 3, 4), (2, 1, 3, 3))),
    C("conv2d_dilation_groups", lambda x, w, b: F.conv2d(x, w, b, padding=2, dilation=2, groups=2),
      lambda x, w, b: _np_conv2d(x, w, b, padding=2, dilation=2, groups=2), ((1, 2, 4, 5), (2, 1, 3, 3), (2,))),
    C("conv2d_per_task", lambda x, w, b: F.conv2d(x, w, b, padding=1), lambda x, w, b: _np_conv2d(x, w, b, padding=1),
      ((2, 1, 3, 3), (2, 2, 1, 3, 3), (2, 2))),
    C("conv_transpose2d", lambda x, w, b: F.conv_transpose2d(x, w, b, 2, 1, 1),
      lambda x, w, b: _np_conv_transpose2d(x, w, b, 2, 1, 1), ((2, 3, 3, 4), (3, 2, 3, 3), (2,))),
    C("conv_transpose2d_dilation_groups", lambda x, w: F.conv_transpose2d(x, w, None, 1, 1, groups=2, dilation=2),
      lambda x, w: _np_conv_transpose2d(x, w, None, 1, 1, groups=2, dilation=2), ((1, 4, 3, 3), (4, 1, 2, 2))),
    C("conv_transpose2d_output_padding_under_dilation", lambda x, w: F.conv_transpose2d(x, w, None, 1, 0, 1, 1, 2),
      lambda x, w: _np_conv_transpose2d(x, w, None, 1, 0, 1, 1, 2), ((1, 2, 3, 2), (2, 2, 2, 2))),
    C("conv_transpose1d", lambda x, w, b: F.conv_transpose1d(x, w, b, 2),
      lambda x, w, b: _np_conv_transpose2d(x[:, :, None], w[:, :, None], b, 2)[:, :, 0], ((2, 3, 5), (3, 2, 3), (2,))),
    C("lstm", _recurrence("LSTM"), lambda *a: _np_recurrence("LSTM", *a), ((3, 2, 3), (8, 3), (8, 2), (8,), (8,)),
      domain="unit"),
    C("gru_batch_first", _recurrence("GRU", True), lambda *a: _np_recurrence("GRU", *a, batch_first=True),
      ((2, 3, 3), (6, 3), (6, 2), (6,), (6,)), domain="unit"),
    C("max_pool2d", lambda x: F.max_pool2d(x, 2), lambda x: _np_pool(x, 2, 2, np.max), ((2, 2, 4, 5),),
      domain="distinct"),
    C("max_pool2d_padded", lambda x: F.max_pool2d(x, 3, 2, 1), lambda x: _np_pool(x, 3, 2, np.max, 1, -np.inf),
      ((1, 2, 5, 5),), domain="distinct"),
    C("avg_pool2d", lambda x: F.avg_pool2d(x, 2), lambda x: _np_pool(x, 2, 2, np.mean), ((2, 2, 4, 4),)),
    # losses and normalisation
    C("cross_entropy_indices", lambda x: F.cross_entropy(x, Tensor(_LABELS)),
      lambda x: -_np_log_softmax(x, 1)[np.arange(4), _LABELS].mean(), ((4, 3),)),
    C("cross_entropy_one_hot", lambda x: F.cross_entropy(x, Tensor(_ONE_HOT, dtype=x.dtype)),
      lambda x: -(_ONE_HOT * _np_log_softmax(x, 1)).sum(1).mean().astype(x.dtype), ((4, 3),)),
    C("nll_loss_sum", lambda x: F.nll_loss(x, Tensor(_LABELS), reduction="sum"),
      lambda x: -x[np.arange(4), _LABELS].sum(), ((4, 3),)),
    C("mse_loss", lambda a, b: F.mse_loss(a, b), lambda a, b: ((a - b) ** 2).mean(), ((4, 3), (4, 3))),
    C("l1_loss_sum", lambda a, b: F.l1_loss(a, b, reduction="sum"), lambda a, b: np.abs(a - b).sum(),
      ((4, 3), (4, 3)), domain="distinct"),
    C("bce_with_logits", lambda a, t: F.binary_cross_entropy_with_logits(a * 4, t.sigmoid()),
      lambda a, t: np.mean(np.logaddexp(0, a * 4) - a * 4 * _sigmoid(t)), ((4, 3), (4, 3))),
    C("batch_norm_train", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
      _np_batch_norm, ((4, 3, 2, 2), (3,), (3,))),
    C("batch_norm_relu_pool", lambda x, w, b: F._batch_norm_relu_pool(x, None, None, w, b, 0.1, 1e-5),
      lambda x, w, b: _np_pool(np.maximum(_np_batch_norm(x, w, b), 0), 2, 2, np.max), ((3, 2, 4, 5), (2,), (2,)),
      domain="distinct"),
    # composed in core for PyTorch compatibility: sorting, scans, norms, einsum, pieces, numeric
    C("sort", lambda a: a.sort(1).values, lambda a: np.sort(a, 1), ((3, 5),), NUMERIC, "distinct"),
    C("sort_descending_dim0", lambda a: a.sort(0, descending=True).values, lambda a: -np.sort(-a, 0), ((4, 3),),
      domain="distinct"),
    C("sort_indices", lambda a: a.sort(-1).indices, lambda a: np.argsort(a, -1), ((3, 5),), domain="distinct",
      grad=False, out_dtype=_int64),
    C("argsort_ties_stable", lambda a: a.argsort(1, stable=True), lambda a: np.argsort(a, 1, kind="stable"),
      ((3, 7),), ("int64",), grad=False),
    C("argsort_descending_ties", lambda a: a.argsort(0, descending=True, stable=True),
      lambda a: np.argsort(-a, 0, kind="stable"), ((7, 3),), ("int64",), grad=False),
    C("topk", lambda a: a.topk(2).values, lambda a: _np_topk(a, 2, -1)[0], ((3, 5),), NUMERIC, "distinct"),
    C("topk_smallest_indices", lambda a: a.topk(3, dim=0, largest=False).indices,
      lambda a: _np_topk(a, 3, 0, False)[1], ((4, 3),), domain="distinct", grad=False, out_dtype=_int64),
    C("cumsum", lambda a: a.cumsum(1), lambda a: np.cumsum(a, 1), ((3, 5),), NUMERIC),
    C("cumsum_bool", lambda a: a.cumsum(0), lambda a: np.cumsum(a, 0, dtype=np.int64), ((6, 2),), ("bool",),
      grad=False, out_dtype=_int64),
    C("cumsum_dtype", lambda a: a.cumsum(-1, dtype="float64"), lambda a: np.cumsum(a, -1, dtype=np.float64),
      ((2, 4),), NUMERIC, grad=False, out_dtype=lambda d: "float64"),
    C("cumprod", lambda a: a.cumprod(0), lambda a: np.cumprod(a, 0), ((5, 3),), NUMERIC),
    C("cumprod_zeros", lambda a: a.masked_fill(Tensor(_MASK), 0.0).cumprod(1),
      lambda a: np.cumprod(np.where(_MASK, 0, a), 1).astype(a.dtype), ((3, 4),)),
    C("prod", lambda a: a.prod(), np.prod, ((3, 4),), NUMERIC),
    C("prod_dim_keepdim", lambda a: a.prod(1, keepdim=True), lambda a: np.prod(a, 1, keepdims=True), ((3, 5),),
      NUMERIC),
    C("prod_negdim", lambda a: a.prod(-1), lambda a: np.prod(a, -1), ((2, 3, 7),), NUMERIC),
    C("prod_bool", lambda a: a.prod(0), lambda a: np.prod(a, 0), ((4, 3),), ("bool",), grad=False, out_dtype=_int64),
    C("prod_dtype", lambda a: a.prod(1, dtype="float64"), lambda a: np.prod(a, 1, dtype=np.float64), ((3, 4),),
      NUMERIC, out_dtype=lambda d: "float64"),
    # rows with no zero, one and two (the second-order gradient of two zeros is the product of the others)
    C("prod_zeros", lambda a: a.prod(1), lambda a: np.prod(a, 1), ((4, 3),), domain="zeros"),
    C("prod_zeros_dim0_keepdim", lambda a: a.prod(0, keepdim=True), lambda a: np.prod(a, 0, keepdims=True),
      ((4, 3),), domain="zeros"),
    C("prod_several_zeros", lambda a: a.prod(-1), lambda a: np.prod(a, -1), ((3, 4),), domain="zeros"),  # 1, 3, none
    C("prod_all_zeros", lambda a: a.prod(), np.prod, ((3, 4),), domain="zeros"),
    C("median", lambda a: a.median(), _np_median, ((3, 4),), NUMERIC, "distinct"),
    C("median_dim", lambda a: a.median(1).values, lambda a: _np_median(a, 1), ((3, 5),), NUMERIC, "distinct"),
    C("median_even_keepdim", lambda a: a.median(-1, keepdim=True).values, lambda a: _np_median(a, -1, True),
      ((3, 4),), NUMERIC, "distinct"),
    C("median_indices", lambda a: a.median(0).indices, lambda a: _np_median_index(a, 0), ((4, 3),),
      domain="distinct", grad=False, out_dtype=_int64),
    C("norm", lambda a: a.norm(), lambda a: _np_norm(a, 2), ((3, 4),)),
    C("norm_p1_dim", lambda a: a.norm(1, dim=1), lambda a: _np_norm(a, 1, 1), ((3, 4),), domain="distinct"),
    C("norm_p3_keepdim", lambda a: a.norm(3, dim=0, keepdim=True), lambda a: _np_norm(a, 3, 0, True), ((3, 4),),
      domain="distinct"),
    C("norm_inf", lambda a: a.norm(math.inf, dim=-1), lambda a: _np_norm(a, math.inf, -1), ((3, 4),),
      domain="distinct"),
    C("norm_neg_inf", lambda a: a.norm(-math.inf, dim=(0, 1)), lambda a: _np_norm(a, -math.inf, (0, 1)),
      ((3, 4),), domain="distinct"),
    C("norm_p0", lambda a: a.norm(0, dim=1), lambda a: (a != 0).sum(1).astype(a.dtype), ((3, 4),), grad=False),
    C("cdist", lambda a, b: cdist(a, b), lambda a, b: _np_cdist(a, b, 2), ((3, 4), (5, 4))),
    C("cdist_p1_batched", lambda a, b: cdist(a, b, 1), lambda a, b: _np_cdist(a, b, 1), ((2, 3, 4), (2, 2, 4)),
      domain="distinct"),
    C("einsum_matmul", lambda a, b: einsum("ij,jk->ik", a, b), lambda a, b: np.einsum("ij,jk->ik", a, b),
      ((3, 4), (4, 2)), NUMERIC),
    C("einsum_batched_sum", lambda a, b: einsum("bij,bkj->bk", a, b), lambda a, b: np.einsum("bij,bkj->bk", a, b),
      ((2, 3, 4), (2, 5, 4))),
    C("einsum_outer_implicit", lambda a, b: einsum("i,j", a, b), lambda a, b: np.einsum("i,j", a, b), ((3,), (4,)),
      NUMERIC),
    C("einsum_three_operands", lambda a, b, c: einsum("ij,jk,k->i", a, b, c),
      lambda a, b, c: np.einsum("ij,jk,k->i", a, b, c), ((2, 3), (3, 4), (4,))),
    C("einsum_permute_reduce", lambda a: einsum("abc->ca", a), lambda a: np.einsum("abc->ca", a), ((2, 3, 4),),
      NUMERIC),
    C("index_select", lambda a: a.index_select(1, Tensor([2, 0, 2])), lambda a: np.take(a, [2, 0, 2], 1),
      ((3, 4),), ALL),
    C("masked_fill", lambda a: a.masked_fill(a.detach() > 0, 0.5), lambda a: np.where(a > 0, 0.5, a).astype(a.dtype),
      ((3, 4),)),
    C("masked_fill_bcast_tensor_value", lambda a, v: a.masked_fill(Tensor(_MASK), v.sum()),
      lambda a, v: np.where(_MASK, v.sum(), a).astype(a.dtype), ((3, 4), (2,)), NUMERIC),
    C("scatter", lambda a, s: a.scatter(1, Tensor(_SCATTER), s), lambda a, s: _np_scatter(a, 1, _SCATTER, s),
      ((3, 4), (3, 3)), NUMERIC),
    C("scatter_value", lambda a: a.scatter(1, Tensor(_SCATTER), value=2),
      lambda a: _np_scatter(a, 1, _SCATTER, np.full((3, 2), 2, a.dtype)), ((3, 4),), NUMERIC),
    C("scatter_add", lambda a, s: a.scatter_add(1, Tensor(_SCATTER_REPEATS), s),
      lambda a, s: _np_scatter(a, 1, _SCATTER_REPEATS, s, add=True), ((3, 4), (3, 2)), NUMERIC),
    C("scatter_add_dim0", lambda a, s: a.scatter_add(0, Tensor(_SCATTER_REPEATS.T), s),
      lambda a, s: _np_scatter(a, 0, _SCATTER_REPEATS.T, s, add=True), ((4, 3), (2, 3)), NUMERIC),
    C("masked_select", lambda a: a.masked_select(a.detach() > 0), lambda a: a[a > 0], ((3, 4),), NUMERIC),
    C("masked_select_bcast_mask", lambda a: a.masked_select(Tensor(_MASK)),
      lambda a: a[np.broadcast_to(_MASK, a.shape)], ((3, 4),), ALL),
    C("masked_select_bcast_input", lambda a: a.masked_select(Tensor(_MASK_2D)),
      lambda a: np.broadcast_to(a, _MASK_2D.shape)[_MASK_2D], ((4,),), NUMERIC),
    C("nonzero", lambda a: a.nonzero(), np.argwhere, ((3, 4),), ("int64", "bool"), grad=False, out_dtype=_int64),
    C("nonzero_3d", lambda a: a.nonzero(), np.argwhere, ((2, 3, 4),), domain="zeros", grad=False,
      out_dtype=_int64),
    C("nonzero_as_tuple", lambda a: stack(a.nonzero(as_tuple=True)), lambda a: np.stack(np.nonzero(a)), ((3, 4),),
      NUMERIC, "zeros", grad=False, out_dtype=_int64),
    C("flip", lambda a: a.flip((0, -1)), lambda a: np.flip(a, (0, -1)), ((2, 3, 4),), ALL),
    C("flip_one_dim", lambda a: a.flip(1), lambda a: np.flip(a, 1), ((3, 4),), NUMERIC),
    C("roll", lambda a: a.roll(2, 1), lambda a: np.roll(a, 2, 1), ((3, 5),), ALL),
    C("roll_dims_negative", lambda a: a.roll((1, -7), (0, -1)), lambda a: np.roll(a, (1, -7), (0, -1)), ((3, 4),),
      NUMERIC),
    C("roll_flattened", lambda a: a.roll(-5), lambda a: np.roll(a, -5), ((3, 4),), ALL),
    C("tril", lambda a: a.tril(), np.tril, ((3, 4),), ALL),
    C("tril_below_batched", lambda a: a.tril(-1), lambda a: np.tril(a, -1), ((2, 4, 3),), NUMERIC),
    C("triu_above_batched", lambda a: a.triu(2), lambda a: np.triu(a, 2), ((2, 3, 5),), ALL),
    C("triu_below", lambda a: a.triu(diagonal=-1), lambda a: np.triu(a, -1), ((4, 3),), NUMERIC),
    C("repeat", lambda a: a.repeat(2, 1, 3), lambda a: np.tile(a, (2, 1, 3)), ((2, 3),), ALL),
    C("split", lambda a: _scaled_cat(a.split(2, 1), 1), lambda a: _np_scaled_cat(np.split(a, [2, 4], 1), 1),
      ((3, 5),), NUMERIC),
    C("split_sections", lambda a: _scaled_cat(a.split([1, 3], 0), 0),
      lambda a: _np_scaled_cat(_np_split(a, [1, 3], 0), 0), ((4, 2),), NUMERIC),
    C("chunk", lambda a: _scaled_cat(a.chunk(3, -1), -1), lambda a: _np_scaled_cat(np.split(a, [3, 6], -1), -1),
      ((2, 7),), NUMERIC),
    C("t", lambda a: a.t(), lambda a: a.T, ((3, 4),), ALL),
    C("mm", lambda a, b: a.mm(b), np.matmul, ((3, 4), (4, 2)), NUMERIC),
    C("bmm", lambda a, b: a.bmm(b), np.matmul, ((2, 3, 4), (2, 4, 5)), NUMERIC),
    C("floor", lambda a: a.floor(), np.floor, ((3, 4),), NUMERIC, "distinct", grad=False),
    C("floor_large", lambda a: (a * 2.0 ** 63).floor(), lambda a: np.floor(a * a.dtype.type(2.0 ** 63)), ((3, 4),),
      domain="distinct", grad=False),  # beyond int64: each float is its own floor
    C("floor_nonfinite", lambda a: _with_infs(a).floor(), lambda a: np.floor(_np_with_infs(a)), ((3, 4),),
      domain="nan", grad=False),
    C("floor_divide", lambda a, b: a // b, np.floor_divide, ((3, 4), (3, 4)), domain="positive", grad=False),
    C("floor_divide_int", lambda a, b: a // (b * 2 + 1), lambda a, b: a // _np_odd(b), ((3, 4), (3, 4)),
      ("int64",), grad=False),
    C("floor_divide_scalar", lambda a: a // -3, lambda a: a // a.dtype.type(-3), ((3, 4),), NUMERIC, "distinct",
      grad=False),
    C("floor_divide_int_large", lambda a, b: (a * 2 ** 26 + b) // (b * 2 + 1),
      lambda a, b: (a * 2 ** 26 + b) // _np_odd(b), ((3, 4), (3, 4)), ("int64",), grad=False),  # beyond float32, within int32
    C("remainder_int_large", lambda a, b: (a * 2 ** 26 + b) % (b * 2 + 1), lambda a, b: (a * 2 ** 26 + b) % _np_odd(b),
      ((3, 4), (3, 4)), ("int64",), grad=False),
    C("remainder", lambda a, b: a % b, np.remainder, ((3, 4), (4,)), domain="positive"),
    C("remainder_int", lambda a, b: a % (b * 2 + 1), lambda a, b: a % _np_odd(b), ((3, 4), (3, 4)), ("int64",),
      grad=False),
    C("remainder_scalar", lambda a: a % 0.7, lambda a: a % a.dtype.type(0.7), ((3, 4),), domain="distinct"),
    C("rremainder", lambda a: 5 % a, lambda a: 5 % a, ((3, 4),), domain="positive"),
    C("erf", lambda a: a.erf(), _np_erf, ((3, 4),)),
    C("erf_int", lambda a: a.erf(), lambda a: _np_erf(a.astype(np.float32)), ((5,),), ("int64",), grad=False,
      out_dtype=_to_float),
    C("log1p", lambda a: a.log1p(), np.log1p, ((3, 4),), domain="unit"),
    C("log1p_tiny", lambda a: (a * 1e-10).log1p(), lambda a: np.log1p(a * a.dtype.type(1e-10)), ((3, 4),)),
    C("log1p_nonfinite", lambda a: _with_infs(a).abs().log1p(), lambda a: np.log1p(np.abs(_np_with_infs(a))),
      ((3, 4),), domain="nan", grad=False),
    C("expm1", lambda a: a.expm1(), np.expm1, ((3, 4),)),
    C("expm1_tiny", lambda a: (a * 1e-10).expm1(), lambda a: np.expm1(a * a.dtype.type(1e-10)), ((3, 4),)),
    C("expm1_nonfinite", lambda a: _with_infs(a * 40).expm1(), lambda a: np.expm1(_np_with_infs(a * 40)),
      ((3, 4),), domain="nan", grad=False),  # overflow to inf, -1 far below 0
    C("round", lambda a: a.round(), np.round, ((3, 4),), NUMERIC, "distinct", grad=False),
    C("round_ties", lambda a: (a.floor() + 0.5).round(), lambda a: np.round(np.floor(a) + a.dtype.type(0.5)),
      ((3, 4),), domain="distinct", grad=False),  # exact halves go to the even neighbour
    C("round_decimals", lambda a: a.round(decimals=2), lambda a: np.round(a, 2), ((3, 4),), grad=False),
    C("round_nonfinite", lambda a: _with_infs(a * 1e17).round(), lambda a: np.round(_np_with_infs(a * 1e17)),
      ((3, 4),), domain="nan", grad=False),
    C("ceil", lambda a: a.ceil(), np.ceil, ((3, 4),), NUMERIC, "distinct", grad=False),
    C("trunc", lambda a: a.trunc(), np.trunc, ((3, 4),), NUMERIC, "distinct", grad=False),
    C("isnan", lambda a: a.isnan(), np.isnan, ((3, 4),), domain="nan", grad=False),
    C("isinf", lambda a: _with_infs(a).isinf(), lambda a: np.isinf(_np_with_infs(a)), ((3, 4),), domain="nan",
      grad=False),
    C("isfinite", lambda a: _with_infs(a).isfinite(), lambda a: np.isfinite(_np_with_infs(a)), ((3, 4),),
      domain="nan", grad=False),
    C("isinf_isfinite_int", lambda a: a.isinf() | ~a.isfinite() | a.isnan(), lambda a: a != a, ((3, 4),),
      ("int64",), grad=False),
    # nn.functional composed for PyTorch compatibility
    C("interpolate_nearest", lambda x: F.interpolate(x, scale_factor=2), lambda x: _np_nearest(x, 4, 6),
      ((1, 2, 2, 3),)),
    C("interpolate_nearest_size", lambda x: F.interpolate(x, size=(3, 5)), lambda x: _np_nearest(x, 3, 5),
      ((2, 1, 4, 3),)),
    C("interpolate_bilinear", lambda x: F.interpolate(x, size=(5, 3), mode="bilinear"),
      lambda x: _np_bilinear(x, 5, 3), ((1, 2, 3, 4),)),
    C("interpolate_bilinear_corners", lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True),
      lambda x: _np_bilinear(x, 4, 6, True), ((2, 1, 2, 3),)),
    C("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, (2, 3)), lambda x: _np_adaptive_avg(x, 2, 3),
      ((2, 2, 5, 4),)),
    C("adaptive_avg_pool2d_global", lambda x: F.adaptive_avg_pool2d(x, 1),
      lambda x: _np_image(x).mean(axis=(2, 3), keepdims=True), ((2, 3, 3, 2),)),
    C("normalize", lambda a: F.normalize(a), lambda a: a / _np_norm(a, 2, 1, True), ((3, 4),)),
    C("normalize_p1_dim0", lambda a: F.normalize(a, 1, 0), lambda a: a / _np_norm(a, 1, 0, True), ((3, 4),),
      domain="distinct"),
    C("cosine_similarity", lambda a, b: F.cosine_similarity(a, b),
      lambda a, b: _np_cosine(a, b, 1), ((3, 4), (3, 4))),
    C("cosine_similarity_bcast_last", lambda a, b: F.cosine_similarity(a, b, dim=-1),
      lambda a, b: _np_cosine(a, b, -1), ((2, 3, 4), (4,))),
    C("pairwise_distance", lambda a, b: F.pairwise_distance(a, b), lambda a, b: _np_norm(a - b + 1e-6, 2, -1),
      ((3, 4), (3, 4))),
    C("pairwise_distance_p1_keepdim", lambda a, b: F.pairwise_distance(a, b, 1, keepdim=True),
      lambda a, b: _np_norm(a - b + 1e-6, 1, -1, True), ((3, 4), (3, 4)), domain="distinct"),
    C("gelu", lambda a: F.gelu(a), _np_gelu, ((3, 4),)),
    C("gelu_tanh", lambda a: F.gelu(a, approximate="tanh"), _np_gelu_tanh, ((3, 4),)),
    C("leaky_relu", lambda a: F.leaky_relu(a, 0.2), lambda a: np.where(a > 0, a, a * 0.2).astype(a.dtype), ((3, 4),),
      domain="distinct"),
    C("cross_entropy_weight", lambda x: F.cross_entropy(x, Tensor(_LABELS), Tensor(_W, dtype=x.dtype)),
      lambda x: _np_cross_entropy(x, _LABELS, _W), ((4, 3),)),
    C("cross_entropy_ignore_index", lambda x: F.cross_entropy(x, Tensor(_LABELS_IGNORED)),
      lambda x: _np_cross_entropy(x, _LABELS_IGNORED), ((4, 3),)),
    C("cross_entropy_weight_ignore_sum", lambda x: F.cross_entropy(x, Tensor(_LABELS), Tensor(_W, dtype=x.dtype),
                                                                    ignore_index=0, reduction="sum"),
      lambda x: _np_cross_entropy(x, _LABELS, _W, 0, "sum"), ((4, 3),)),
]


def _np_put(a, rows, v, accumulate=False):
    out = a.copy()
    if accumulate:
        np.add.at(out, (np.array(rows),), v)
    else:
        out[rows] = v
    return out


# NaN wins, as in NumPy (and PyTorch): max/min/amax/amin and maximum/minimum give NaN where an operand or
# a reduced row holds one, argmax/argmin the index of the first NaN (median too: NaN, at the first NaN), relu(NaN)
# is NaN, a pooling window holding NaN gives NaN; comparisons with NaN are false (ne true), NaN is nonzero. Not differentiable here: gradients
# through NaN are checked by the conformance suite's pooling test.
_N = dict(domain="nan", grad=False)
NAN_CASES: list[OpCase] = [
    C("nan_amax", lambda a: a.amax(), np.max, ((3, 4),), **_N),
    C("nan_max_dim_values", lambda a: a.max(dim=1).values, lambda a: a.max(1), ((3, 4),), **_N),
    C("nan_max_dim_indices", lambda a: a.max(dim=1).indices, lambda a: a.argmax(1), ((3, 4),), out_dtype=_int64, **_N),
    C("nan_amin_dim0", lambda a: a.amin(0), lambda a: a.min(0), ((3, 4),), **_N),
    C("nan_min_long_rows", lambda a: a.amin(1), lambda a: a.min(1), ((2, 700),), **_N),
    C("nan_argmax_flat", lambda a: a.argmax(), lambda a: np.int64(a.argmax()), ((3, 4),), out_dtype=_int64, **_N),
    C("nan_argmax_dim0", lambda a: a.argmax(dim=0), lambda a: a.argmax(0), ((3, 4),), out_dtype=_int64, **_N),
    C("nan_argmin_keepdim", lambda a: a.argmin(1, keepdim=True), lambda a: a.argmin(1, keepdims=True), ((3, 4),),
      out_dtype=_int64, **_N),
    C("nan_argmax_long_rows", lambda a: a.argmax(1), lambda a: a.argmax(1), ((2, 700),), out_dtype=_int64, **_N),
    C("nan_maximum", lambda a, b: a.maximum(b), np.maximum, ((3, 4), (3, 4)), **_N),
    C("nan_minimum_bcast", lambda a, b: a.minimum(b), np.minimum, ((3, 4), (4,)), **_N),
    C("nan_relu", lambda a: a.relu(), lambda a: np.maximum(a, 0), ((3, 4),), **_N),
    # the kernel's contract "g where x > 0, else 0" (PyTorch's): a NaN gradient where x <= 0 gives 0
    C("nan_relu_backward", lambda g, x: relu_backward(g, x), lambda g, x: np.where(x > 0, g, 0).astype(g.dtype),
      ((3, 4), (3, 4)), **_N),
    C("nan_clamp", lambda a: a.clamp(-0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5), ((3, 4),), **_N),
    C("nan_sign_abs", lambda a: a.sign() * 10 + a.abs(), lambda a: np.sign(a) * 10 + np.abs(a), ((3, 4),), **_N),
    C("nan_sum_dim", lambda a: a.sum(1), lambda a: a.sum(1), ((3, 4),), **_N),
    C("nan_softmax", lambda a: a.softmax(1), lambda a: np.exp(_np_log_softmax(a, 1)), ((3, 4),), **_N),
    C("nan_lt", lambda a, b: a < b, np.less, ((3, 4), (3, 4)), out_dtype=_bool, **_N),
    C("nan_ne", lambda a, b: a != b, np.not_equal, ((3, 4), (3, 4)), out_dtype=_bool, **_N),
    C("nan_median", lambda a: a.median(), _np_median, ((3, 4),), **_N),
    C("nan_median_dim_values", lambda a: a.median(1).values, lambda a: _np_median(a, 1), ((3, 4),), **_N),
    C("nan_median_dim_indices", lambda a: a.median(1).indices, lambda a: _np_median_index(a, 1), ((3, 4),),
      out_dtype=_int64, **_N),
    C("nan_prod_dim", lambda a: a.prod(1), lambda a: np.prod(a, 1), ((3, 4),), **_N),
    C("nan_nonzero", lambda a: a.nonzero(), np.argwhere, ((3, 4),), out_dtype=_int64, **_N),  # NaN is nonzero
    C("nan_max_pool2d", lambda x: F.max_pool2d(x, 2), lambda x: _np_pool(x, 2, 2, np.max), ((2, 2, 4, 5),), **_N),
    C("nan_max_pool2d_padded", lambda x: F.max_pool2d(x, 3, 2, 1), lambda x: _np_pool(x, 3, 2, np.max, 1, -np.inf),
      ((1, 2, 5, 5),), **_N),
]

CASES_BY_NAME = {c.name: c for c in CASES + NAN_CASES}
assert len(CASES_BY_NAME) == len(CASES) + len(NAN_CASES), "case names must be unique"


# -- zero-size variants -------------------------------------------------------------------------------

def _zeroed(shapes: tuple, axis: int) -> tuple:
    """``shapes`` with broadcast axis ``axis`` (counted over the broadcast rank) set to 0 in every input
    that has it at a size other than 1 (inputs of size 1 there broadcast to 0)."""
    rank = max(len(s) for s in shapes)
    out = []
    for s in shapes:
        i = axis - (rank - len(s))
        out.append(tuple(0 if j == i and d != 1 else d for j, d in enumerate(s)))
    return tuple(out)


def _reference_error(case: OpCase, shapes: tuple) -> Exception | None:
    """What NumPy's reference raises on inputs of ``shapes`` (None if it does not)."""
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the mean of nothing: NaN, with NumPy's warning
            case.ref(*case.inputs(case.dtypes[0], shapes))
    except Exception as e:  # any failure rules the variant out or in, below
        return e
    return None


def zero_size_variants(case: OpCase) -> list[tuple]:
    """Input shapes for ``case`` with a first or a last (broadcast) axis of size 0, where the case is
    well-formed: the same shapes with 2 in place of the 0 pass NumPy's reference. (A variant whose
    non-empty twin fails mismatches a constant of the case, an index list or a label vector, not an
    empty tensor.) Variants where an index of the case falls outside the empty axis are left to the
    index-bounds test."""
    rank = max(len(s) for s in case.shapes)
    found = list(case.zero_shapes)
    for axis in sorted({0, rank - 1}):
        shapes = _zeroed(case.shapes, axis)
        twin = tuple(tuple(2 if d == 0 else d for d in s) for s in shapes)
        if shapes != case.shapes and shapes not in found and _reference_error(case, twin) is None \
                and not isinstance(_reference_error(case, shapes), IndexError):
            found.append(shapes)
    return found
