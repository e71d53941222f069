"""Tensor's operators and op methods, bound straight to the op functions (no wrapper call on the hot path)."""

from __future__ import annotations

from .. import dtypes as _dt
from . import elementwise as ew
from . import indexing, linalg, norms, numeric, pieces, reduce, scan, shape, sorting, transfer
from ._operands import expect_tensor as tensor

OPERATORS = {
    "__add__": ew.add, "__radd__": ew.add, "__sub__": ew.sub, "__rsub__": ew.rsub,
    "__mul__": ew.mul, "__rmul__": ew.mul, "__truediv__": ew.div, "__rtruediv__": ew.rdiv,
    "__pow__": ew.pow, "__rpow__": ew.rpow, "__matmul__": linalg.matmul,
    "__rmatmul__": lambda a, b: linalg.matmul(b, a),
    "__neg__": ew.neg, "__pos__": lambda x: x, "__abs__": ew.abs, "__invert__": ew.logical_not,
    "__and__": ew.logical_and, "__or__": ew.logical_or,
    "__eq__": ew.eq, "__ne__": ew.ne, "__lt__": ew.lt, "__le__": ew.le, "__gt__": ew.gt, "__ge__": ew.ge,
    "__getitem__": indexing.getitem, "__setitem__": indexing.setitem,
    "__floordiv__": numeric.floor_divide, "__rfloordiv__": numeric.rfloordiv, "__mod__": numeric.remainder,
    "__rmod__": numeric.rremainder,
}

METHODS = {
    # elementwise
    "add": ew.add, "sub": ew.sub, "mul": ew.mul, "div": ew.div, "pow": ew.pow, "maximum": ew.maximum,
    "minimum": ew.minimum, "eq": ew.eq, "ne": ew.ne, "lt": ew.lt, "le": ew.le, "gt": ew.gt, "ge": ew.ge,
    "neg": ew.neg, "abs": ew.abs, "sign": ew.sign, "exp": ew.exp, "log": ew.log, "sqrt": ew.sqrt, "rsqrt": ew.rsqrt,
    "square": ew.square, "sin": ew.sin, "cos": ew.cos, "tanh": ew.tanh, "sigmoid": ew.sigmoid, "relu": ew.relu,
    "clamp": ew.clamp, "clip": ew.clamp, "logical_not": ew.logical_not, "logical_and": ew.logical_and,
    "logical_or": ew.logical_or, "floor": numeric.floor, "floor_divide": numeric.floor_divide,
    "remainder": numeric.remainder, "erf": numeric.erf, "log1p": numeric.log1p, "expm1": numeric.expm1,
    "round": numeric.round, "ceil": numeric.ceil, "trunc": numeric.trunc, "fix": numeric.trunc,
    "isnan": numeric.isnan, "isinf": numeric.isinf,
    "isfinite": numeric.isfinite, "isclose": numeric.isclose, "allclose": numeric.allclose,
    "masked_fill": pieces.masked_fill, "masked_select": pieces.masked_select, "nonzero": pieces.nonzero,
    # reductions
    "sum": reduce.sum, "mean": reduce.mean, "prod": reduce.prod, "max": reduce.max, "min": reduce.min,
    "amax": reduce.amax, "amin": reduce.amin, "argmax": reduce.argmax, "argmin": reduce.argmin, "var": reduce.var,
    "std": reduce.std, "logsumexp": reduce.logsumexp, "softmax": reduce.softmax, "log_softmax": reduce.log_softmax,
    "any": reduce.any, "all": reduce.all, "norm": norms.norm, "cumsum": scan.cumsum, "cumprod": scan.cumprod,
    "sort": sorting.sort, "argsort": sorting.argsort, "topk": sorting.topk, "median": sorting.median,
    "unique": sorting.unique,
    # movement
    "reshape": shape.reshape, "view": shape.reshape, "permute": shape.permute,
    "transpose": shape.transpose, "expand": shape.expand, "unsqueeze": shape.unsqueeze,
    "squeeze": shape.squeeze, "flatten": shape.flatten, "unflatten": shape.unflatten,
    "gather": indexing.gather, "index_put": indexing.index_put, "index_select": pieces.index_select,
    "scatter": pieces.scatter, "scatter_add": pieces.scatter_add, "repeat": pieces.repeat, "chunk": pieces.chunk,
    "split": pieces.split, "t": pieces.t, "flip": pieces.flip, "roll": pieces.roll, "tril": pieces.tril,
    "triu": pieces.triu,
    "expand_as": lambda x, other: shape.expand(x, tensor(other, "other", "expand_as").shape),
    "view_as": lambda x, other: shape.reshape(x, tensor(other, "other", "view_as").shape),
    "reshape_as": lambda x, other: shape.reshape(x, tensor(other, "other", "reshape_as").shape),
    # linear algebra
    "matmul": linalg.matmul, "mm": pieces.mm, "bmm": pieces.bmm,
    # dtype and device
    "to": transfer.to, "clone": transfer.clone, "cpu": lambda x: transfer.to(x, "cpu"),
    "cuda": lambda x, device=None: transfer.to(x, "cuda" if device is None else f"cuda:{int(device)}"),
    "float": lambda x: ew.cast(x, _dt.float32), "double": lambda x: ew.cast(x, _dt.float64),
    "long": lambda x: ew.cast(x, _dt.int64), "int": lambda x: ew.cast(x, _dt.int64),
    "bool": lambda x: ew.cast(x, _dt.bool_),
    "type_as": lambda x, other: ew.cast(x, tensor(other, "other", "type_as").dtype),
}

PROPERTIES = {"T": shape.T, "mT": shape.mT}


def install(cls) -> None:
    for name, fn in {**OPERATORS, **METHODS}.items():
        setattr(cls, name, fn)
    for name, fn in PROPERTIES.items():
        setattr(cls, name, property(fn))
