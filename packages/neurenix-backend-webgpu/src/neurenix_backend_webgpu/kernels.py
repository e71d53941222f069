"""The kernel set on WebGPU (contract version 2, and some optional kernels): host-side planning (shapes,
strides, parameters) around the WGSL families of :mod:`.wgsl`. Every kernel records dispatches and returns at once; only
``to_numpy`` and ``synchronize`` wait for the device.
"""

from __future__ import annotations

import builtins
import math

import numpy as np

from neurenix.backend.kernels import out_size

from . import wgsl
from .runtime import STORAGE, Runtime, WebGPUBuffer, check_int_range, wgsl_type

F32, I64, BOOL = np.dtype(np.float32), np.dtype(np.int64), np.dtype(bool)
RT: Runtime | None = None  # set by the plugin once the adapter is known


def _strides(shape) -> list:
    out, acc = [], 1
    for s in reversed(shape):
        out.append(acc)
        acc *= s
    return out[::-1]


def _bcast_strides(shape, out_shape) -> list:
    """Element strides of a contiguous ``shape`` read as ``out_shape`` (NumPy broadcasting)."""
    st = _strides(shape)
    lead = len(out_shape) - len(shape)
    return [0] * lead + [0 if s == 1 and o != 1 else t for s, o, t in zip(shape, out_shape[lead:], st)]


def _bcast_shape(*shapes) -> tuple:
    return tuple(np.broadcast_shapes(*shapes))


def _words(values) -> np.ndarray:
    """Parameters as 32-bit words (negative strides wrap, as WGSL's i32(u32) reads them back)."""
    return np.array([int(v) & 0xFFFFFFFF for v in values], dtype=np.uint32)


def _scalar_bits(value, dtype: np.dtype) -> int:
    store = STORAGE[dtype][1]
    if dtype == I64:
        check_int_range(int(value), "scalar operand")
    return int(np.array(value).astype(store).reshape(1).view(np.uint32)[0])


# -- the elementwise family ---------------------------------------------------------------------------

class View:
    """An operand of the map family: a buffer read at ``offset`` with ``strides`` over the output shape."""

    __slots__ = ("buf", "offset", "strides")

    def __init__(self, buf: WebGPUBuffer, offset: int, strides):
        self.buf, self.offset, self.strides = buf, offset, list(strides)


_STATUS: dict = {}  # map expression -> whether it binds the status buffer (a lookup on the per-op path)


def _map(expr: str, out_dtype: np.dtype, operands: list, shape: tuple, out: WebGPUBuffer | None = None,
         out_offset: int = 0, out_strides=None) -> WebGPUBuffer:
    """``out[...] = expr(a, b, c)`` over ``shape``; operands are Views or (dtype, scalar) pairs."""
    rt = RT
    if out is None:
        out = rt.alloc(shape, out_dtype)
    n = math.prod(shape)
    if n == 0:
        return out
    nd = len(shape)
    kinds, words, bufs = [], [n, nd, *shape, out_offset, *(out_strides or _strides(shape))], [out.gpu]
    for op in operands:
        if isinstance(op, View):
            kinds.append((wgsl_type(op.buf.dtype), False))
            words += [op.offset, *op.strides]
            bufs.append(op.buf.gpu)
        else:
            dtype, value = op
            kinds.append((wgsl_type(dtype), True))
            words += [_scalar_bits(value, dtype)] + [0] * nd
    kinds = tuple(kinds)
    key = ("map", expr, wgsl_type(out_dtype), kinds)
    status = _STATUS.get(expr)
    if status is None:
        status = _STATUS[expr] = wgsl.uses_status(expr)
    nbuf = len(bufs) + 1 + status
    pipe = rt.pipeline(key, nbuf, lambda: wgsl.map_source(expr, wgsl_type(out_dtype), kinds), status)
    rt.dispatch(pipe, nbuf, bufs, _words(words), (rt.groups(n, wgsl.WG), 1, 1), status)
    return out


def _elementwise(expr: str, out_dtype, args: tuple) -> WebGPUBuffer:
    """Broadcast buffers and scalars in ``args`` and apply ``expr``; scalars take the buffers' dtype."""
    bufs = [a for a in args if isinstance(a, WebGPUBuffer)]
    shape = _bcast_shape(*(b.shape for b in bufs)) if bufs else ()
    dtype = bufs[-1].dtype if bufs else F32
    operands = [View(a, 0, _bcast_strides(a.shape, shape)) if isinstance(a, WebGPUBuffer)
                else (a_dtype(a, dtype), a) for a in args]
    return _map(expr, out_dtype or dtype, operands, shape)


def a_dtype(scalar, like: np.dtype) -> np.dtype:
    """The dtype a Python scalar operand takes: that of the buffers (core already promoted), bool for
    a condition."""
    return BOOL if isinstance(scalar, bool) and like == BOOL else like


_FLOAT_UNARY = {"exp": "exp(a)", "log": "log(a)", "sqrt": "sqrt(a)", "sin": "sin(a)", "cos": "cos(a)",
                "tanh": "ntanh(a)", "sigmoid": "nsigmoid(a)"}
# per WGSL type where they differ: f32 propagates NaN as NumPy does (WGSL's max/min/sign leave it undefined);
# i32 (int64 on webgpu) raises the overflow flag where NumPy's int64 result would not fit 32 bits
_NUM_UNARY = {"neg": {"i32": "cneg(a)", None: "-a"}, "abs": {"i32": "cabs(a)", None: "abs(a)"},
              "sign": {"f32": "nsign(a)", None: "sign(a)"}, "relu": {"f32": "nrelu(a)", None: "max(a, {t}(0))"}}
_BINARY = {"add": {"i32": "cadd(a, b)", "u32": "a | b", None: "a + b"},
           "sub": {"i32": "csub(a, b)", None: "a - b"},
           "mul": {"i32": "cmul(a, b)", "u32": "a & b", None: "a * b"},
           "div": {None: "a / b"}, "pow": {None: "npow(a, b)"},
           "maximum": {"f32": "nmax(a, b)", "u32": "a | b", None: "max(a, b)"},
           "minimum": {"f32": "nmin(a, b)", "u32": "a & b", None: "min(a, b)"}}
_COMPARE = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def _by_dtype(exprs: dict) -> dict:
    """numpy dtype -> the expression for its WGSL type, worked out once per kernel (not per call)."""
    return {dt: exprs.get(t, exprs[None]).format(t=t) for dt, (t, _) in STORAGE.items()}


def _wgsl_unary(name: str, exprs):
    table = _by_dtype(exprs if isinstance(exprs, dict) else {None: exprs})

    def kernel(x):
        return _elementwise(table[x.dtype], None, (x,))
    kernel.__name__ = name
    return kernel


def _wgsl_binary(name: str, exprs: dict):
    table = _by_dtype(exprs)

    def kernel(a, b):
        dtype = b.dtype if isinstance(b, WebGPUBuffer) else a.dtype
        return _elementwise(table[dtype], None, (a, b))
    kernel.__name__ = name
    return kernel


def _compare(name: str, op: str):
    # a != b as the negation of ==: WGSL's != on floats came out as an ordered comparison (false with NaN)
    # through naga and lavapipe, where IEEE and NumPy say NaN != x is true
    test = "!(a == b)" if op == "!=" else f"a {op} b"

    def kernel(a, b):
        return _elementwise(f"select(0u, 1u, {test})", BOOL, (a, b))
    kernel.__name__ = name
    return kernel


def where(cond, a, b):
    dtype = next((x.dtype for x in (a, b) if isinstance(x, WebGPUBuffer)), F32)
    bufs = [x for x in (cond, a, b) if isinstance(x, WebGPUBuffer)]
    shape = _bcast_shape(*(x.shape for x in bufs))
    operands = [View(x, 0, _bcast_strides(x.shape, shape)) if isinstance(x, WebGPUBuffer) else (d, x)
                for x, d in ((cond, BOOL), (a, dtype), (b, dtype))]
    return _map("select(c, b, a != 0u)", dtype, operands, shape)


def relu_backward(g, x):
    return _elementwise(f"select({wgsl_type(g.dtype)}(0), a, b > {wgsl_type(x.dtype)}(0))", g.dtype, (g, x))


# -- allocation, transfer, casts ------------------------------------------------------------------

def from_numpy(array: np.ndarray, index: int) -> WebGPUBuffer:
    return RT.upload(array)


def to_numpy(x: WebGPUBuffer) -> np.ndarray:
    return RT.read(x)


def full(shape, value, dtype, index) -> WebGPUBuffer:
    dtype = np.dtype(dtype)
    wgsl_type(dtype)
    return _map("a", dtype, [(dtype, value)], tuple(shape))


def copy(x: WebGPUBuffer) -> WebGPUBuffer:
    return _elementwise("a", None, (x,))


def cast(x: WebGPUBuffer, dtype) -> WebGPUBuffer:
    dtype, src = np.dtype(dtype), wgsl_type(x.dtype)
    dst = wgsl_type(dtype)
    if dtype == BOOL:
        expr = f"select(0u, 1u, a != {src}(0))"
    elif src == "f32" and dst == "i32":
        expr = "cf2i(a)"  # truncates toward zero, as NumPy's astype; values outside int32 raise the overflow flag
    else:
        expr = f"{dst}(a)"
    return _elementwise(expr, dtype, (x,))


# -- reductions -------------------------------------------------------------------------------------

def _reduce(op: str, x: WebGPUBuffer, axes: tuple, keepdim: bool, out_dtype: np.dtype) -> WebGPUBuffer:
    st = _strides(x.shape)
    kept = [a for a in range(len(x.shape)) if a not in axes]
    kshape, rshape = [x.shape[a] for a in kept], [x.shape[a] for a in axes]
    out_shape = tuple(1 if a in axes else s for a, s in enumerate(x.shape)) if keepdim else tuple(kshape)
    n_out, r = math.prod(kshape), math.prod(rshape)
    rt = RT
    if r == 0 and op != "sum":  # as NumPy: an extremum over an empty axis has no value, even with no outputs
        raise ValueError(f"{op} over an empty axis (shape {x.shape}, axes {axes}) has no value")
    if n_out == 0:
        return rt.alloc(out_shape, out_dtype)
    if r == 0:  # a sum over nothing
        return full(out_shape, 0, out_dtype, 0)
    out = rt.alloc(out_shape, out_dtype)
    words = [n_out, r, len(kshape), len(rshape), *kshape, *(st[a] for a in kept), *rshape, *(st[a] for a in axes)]
    in_t, out_t = wgsl_type(x.dtype), wgsl_type(out_dtype)
    serial = r <= 64 or n_out >= 256  # short rows or many outputs: one invocation per output
    status = op == "sum" and out_t == "i32"  # integer sums refuse results beyond int32
    pipe = rt.pipeline(("reduce", op, in_t, out_t, serial), 3 + status,
                       lambda: wgsl.reduce_source(op, in_t, out_t, serial), status)
    rt.dispatch(pipe, 3 + status, [out.gpu, x.gpu], _words(words),
                (rt.groups(n_out, wgsl.WG if serial else 1), 1, 1), status)
    return out


def sum(x, axes, keepdim):  # noqa: A001 - kernel names mirror the op names
    return _reduce("sum", x, tuple(axes), keepdim, I64 if x.dtype in (I64, BOOL) else x.dtype)


def max(x, axes, keepdim):  # noqa: A001
    return _reduce("max", x, tuple(axes), keepdim, x.dtype)


def min(x, axes, keepdim):  # noqa: A001
    return _reduce("min", x, tuple(axes), keepdim, x.dtype)


def _arg(op: str):
    def kernel(x, axis, keepdim):
        axes = tuple(range(len(x.shape))) if axis is None else (axis,)  # None: over the flattened tensor
        return _reduce(op, x, axes, keepdim, I64)
    kernel.__name__ = op
    return kernel


# -- movement ---------------------------------------------------------------------------------------

def reshape(x: WebGPUBuffer, shape) -> WebGPUBuffer:
    return WebGPUBuffer(x.gpu, tuple(shape), x.dtype)  # contiguous: a new shape over the same memory


def permute(x: WebGPUBuffer, axes) -> WebGPUBuffer:
    st = _strides(x.shape)
    shape = tuple(x.shape[a] for a in axes)
    return _map("a", x.dtype, [View(x, 0, [st[a] for a in axes])], shape)


def expand(x: WebGPUBuffer, shape) -> WebGPUBuffer:
    return _map("a", x.dtype, [View(x, 0, _bcast_strides(x.shape, tuple(shape)))], tuple(shape))


def cat(xs, axis: int) -> WebGPUBuffer:
    shape = list(xs[0].shape)
    shape[axis] = builtins.sum(x.shape[axis] for x in xs)
    out = RT.alloc(tuple(shape), xs[0].dtype)
    ost, at = _strides(shape), 0
    for x in xs:  # each input copied into its slab of the output
        _map("a", x.dtype, [View(x, 0, _strides(x.shape))], x.shape, out, at * ost[axis], ost)
        at += x.shape[axis]
    return out


def pad(x: WebGPUBuffer, pads, value) -> WebGPUBuffer:
    shape = tuple(s + lo + hi for s, (lo, hi) in zip(x.shape, pads))
    out = full(shape, value, x.dtype, 0)
    ost = _strides(shape)
    offset = builtins.sum(lo * s for (lo, _), s in zip(pads, ost))
    return _map("a", x.dtype, [View(x, 0, _strides(x.shape))], x.shape, out, offset, ost)


def _plan_index(shape: tuple, key: tuple):
    """NumPy indexing as address arithmetic: (result shape, x offset, x strides over the result's axes,
    [(index buffer, axis stride, axis size, its strides over the result's axes)])."""
    xs = _strides(shape)
    has_adv = any(isinstance(k, WebGPUBuffer) for k in key)
    items, advs, base, axis = [], [], 0, 0  # items: ("basic", size, stride) or ("adv",) in key order
    for k in key:
        if k is None:
            items.append(("basic", 1, 0))
        elif isinstance(k, WebGPUBuffer):
            advs.append((k, xs[axis], shape[axis]))
            items.append(("adv",))
            axis += 1
        elif isinstance(k, slice):
            start, stop, step = k.indices(shape[axis])
            items.append(("basic", len(range(start, stop, step)), step * xs[axis]))
            base += start * xs[axis]
            axis += 1
        else:  # an int (already non-negative); with index buffers it counts as advanced for placement
            base += int(k) * xs[axis]
            if has_adv:
                items.append(("int",))
            axis += 1
    items += [("basic", shape[a], xs[a]) for a in range(axis, len(shape))]
    bshape = _bcast_shape(*(b.shape for b, _, _ in advs)) if advs else ()
    pos = [i for i, it in enumerate(items) if it[0] != "basic"]
    basics = [it for it in items if it[0] == "basic"]
    if pos and pos == list(range(pos[0], pos[-1] + 1)):  # adjacent: the index axes replace them in place
        first = builtins.sum(1 for it in items[:pos[0]] if it[0] == "basic")
    else:  # NumPy puts the index axes first
        first = 0
    out_shape = tuple(it[1] for it in basics[:first]) + bshape + tuple(it[1] for it in basics[first:])
    out_xstr = [it[2] for it in basics[:first]] + [0] * len(bshape) + [it[2] for it in basics[first:]]
    nbase = len(basics)
    planned = []
    for b, astride, adim in advs:
        ist = _bcast_strides(b.shape, bshape)
        planned.append((b, astride, adim, [0] * first + ist + [0] * (nbase - first)))
    return out_shape, base, out_xstr, planned


def _index(mode: str, out: WebGPUBuffer, src: WebGPUBuffer, plan, values_strides) -> None:
    """Record an ``index`` family dispatch (``get`` from src into out; ``put``/``add`` src into out)."""
    shape, base, xstr, advs = plan
    n = math.prod(shape)
    if n == 0:
        return
    words = [n, len(shape), *shape, base, *xstr, 0, *values_strides]
    for _, astride, adim, ist in advs:
        words += [astride, adim, *ist]
    rt, t, m = RT, wgsl_type(out.dtype), len(advs)
    status = mode == "add" and t == "i32"  # repeated integer adds refuse sums beyond int32
    pipe = rt.pipeline(("index", t, m, mode), 3 + m + status, lambda: wgsl.index_source(t, m, mode), status)
    rt.dispatch(pipe, 3 + m + status, [out.gpu, src.gpu, *(b.gpu for b, *_ in advs)], _words(words),
                (rt.groups(n, wgsl.WG), 1, 1), status)


def getitem(x: WebGPUBuffer, key) -> WebGPUBuffer:
    plan = shape, base, xstr, advs = _plan_index(x.shape, key)
    if not advs:  # basic indexing: a strided copy
        return _map("a", x.dtype, [View(x, base, xstr)], shape)
    out = RT.alloc(shape, x.dtype)
    _index("get", out, x, plan, [0] * len(shape))
    return out


def index_put(x: WebGPUBuffer, key, values, accumulate: bool) -> WebGPUBuffer:
    out = copy(x)
    plan = _plan_index(x.shape, key)
    if not isinstance(values, WebGPUBuffer):
        values = full((), values, x.dtype, 0)
    _index("add" if accumulate else "put", out, values, plan, _bcast_strides(values.shape, plan[0]))
    return out


# -- linear algebra and windows ---------------------------------------------------------------------

def matmul(a: WebGPUBuffer, b: WebGPUBuffer) -> WebGPUBuffer:
    rt = RT
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    batch = _bcast_shape(a.shape[:-2], b.shape[:-2])
    out = rt.alloc((*batch, m, n), a.dtype)
    nbatch = math.prod(batch)
    if 0 in (m, n, nbatch):
        return out
    if k == 0:
        return full(out.shape, 0, a.dtype, 0)
    ts = rt.tile
    tiles_x, tiles_y = -(-n // ts), -(-m // ts)
    if builtins.max(tiles_x, tiles_y) > rt.max_groups:
        raise MemoryError(f"matmul of {a.shape} @ {b.shape} needs {builtins.max(tiles_x, tiles_y)} workgroups along "
                          f"one axis, more than this adapter's max-compute-workgroups-per-dimension ({rt.max_groups})")
    astr = _bcast_strides(a.shape[:-2], batch) if batch else []
    bstr = _bcast_strides(b.shape[:-2], batch) if batch else []
    words = [m, n, k, len(batch), nbatch, *batch, *(s * m * k for s in astr), *(s * k * n for s in bstr)]
    t = wgsl_type(a.dtype)
    if t == "f32" and rt.cpu:  # no barriers on CPU adapters (see wgsl.matmul_direct_source)
        pipe = rt.pipeline(("matmul_direct", t), 4, lambda: wgsl.matmul_direct_source(t))
        rt.dispatch(pipe, 4, [out.gpu, a.gpu, b.gpu], _words(words), (rt.groups(out.size, wgsl.WG), 1, 1))
        return out
    status = t == "i32"  # integer products refuse results beyond int32
    pipe = rt.pipeline(("matmul", t, ts), 4 + status, lambda: wgsl.matmul_source(t, ts), status)
    grid = (tiles_x, tiles_y, builtins.min(nbatch, rt.max_groups))
    rt.dispatch(pipe, 4 + status, [out.gpu, a.gpu, b.gpu], _words(words), grid, status)
    return out


def unfold(x: WebGPUBuffer, kernel_size, stride, padding, dilation) -> WebGPUBuffer:
    rt = RT
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    n, c, h, w = x.shape
    oh, ow = out_size(h, kh, sh, ph, dh), out_size(w, kw, sw, pw, dw)
    out = rt.alloc((n, c * kh * kw, oh * ow), x.dtype)
    if out.size == 0:
        return out
    ty = wgsl_type(x.dtype)
    region = ((wgsl.UT - 1) * sh + dh * (kh - 1) + 1) * ((wgsl.UT - 1) * sw + dw * (kw - 1) + 1)
    tiled = region <= wgsl.UNFOLD_TILE  # else (huge windows) read global memory directly
    pipe = rt.pipeline(("unfold", ty, tiled), 3, lambda: wgsl.unfold_source(ty, tiled))
    words = [n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow]
    grid = (rt.groups(ow, wgsl.UT), rt.groups(oh, wgsl.UT), builtins.min(n * c, rt.max_groups))
    rt.dispatch(pipe, 3, [out.gpu, x.gpu], _words(words), grid)
    return out


def fold(cols: WebGPUBuffer, output_size, kernel_size, stride, padding, dilation) -> WebGPUBuffer:
    rt = RT
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    h, w = output_size
    n, c = cols.shape[0], cols.shape[1] // (kh * kw)
    oh, ow = out_size(h, kh, sh, ph, dh), out_size(w, kw, sw, pw, dw)
    out = rt.alloc((n, c, h, w), cols.dtype)
    if out.size == 0:
        return out
    ty = wgsl_type(cols.dtype)
    pipe = rt.pipeline(("fold", ty), 3, lambda: wgsl.fold_source(ty))
    words = [n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow]
    rt.dispatch(pipe, 3, [out.gpu, cols.gpu], _words(words), (rt.groups(out.size, wgsl.WG), 1, 1))
    return out


def synchronize(index: int) -> None:
    RT.synchronize()


KERNELS = {
    "from_numpy": from_numpy, "to_numpy": to_numpy, "full": full, "copy": copy, "cast": cast,
    **{n: _wgsl_unary(n, e) for n, e in {**_NUM_UNARY, **_FLOAT_UNARY}.items()},
    **{n: _wgsl_binary(n, e) for n, e in _BINARY.items()},
    **{n: _compare(n, op) for n, op in _COMPARE.items()},
    "where": where, "sum": sum, "max": max, "min": min, "argmax": _arg("argmax"), "argmin": _arg("argmin"),
    "reshape": reshape, "permute": permute, "expand": expand, "getitem": getitem, "index_put": index_put,
    "cat": cat, "pad": pad, "matmul": matmul, "unfold": unfold, "fold": fold,
    "relu_backward": relu_backward, "synchronize": synchronize,
}
