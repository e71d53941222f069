"""Data types and NumPy-like type promotion.

Five dtypes: ``float32`` (the default), ``float64``, ``int64``, ``bool`` and ``int8``. Buffers of every
backend report their dtype as a ``numpy.dtype``; :class:`DType` is the user-facing name for it. ``int8`` is the
storage of quantized weights (``neurenix.quantization``): only backends that declare it hold it (core's and the
C backend for ``cpu``; the GPU backends do not, as PyTorch's quantized kernels are CPU-only too).

Promotion follows NumPy 2 (NEP 50): between tensors the wider kind wins
(bool < int8 < int64 < float32 < float64); a Python scalar is "weak" and only lifts the kind
(``int64_tensor * 2.5`` is float, ``float32_tensor * 2.0`` stays float32). Where NumPy would
invent float64 from integers (``int / int``, ``int * 2.5``) we use the default float, float32,
as PyTorch does.
"""

from __future__ import annotations

import numpy as np


class DType:
    """A tensor element type, such as ``neurenix.float32``."""

    __slots__ = ("_rank", "is_floating_point", "itemsize", "name", "np")

    def __init__(self, name: str, rank: int):
        self.name = name
        self.np = np.dtype(name)
        self.is_floating_point = self.np.kind == "f"
        self.itemsize = self.np.itemsize
        self._rank = rank

    def __repr__(self) -> str:
        return f"neurenix.{self.name}"

    def __reduce__(self):
        return (as_dtype, (self.name,))


bool_ = DType("bool", 0)
int8 = DType("int8", 1)
int64 = DType("int64", 2)
float32 = DType("float32", 3)
float64 = DType("float64", 4)
DTYPES = (float32, float64, int64, bool_, int8)
default_float = float32

# numpy dtype -> DType. Buffers always carry one of these numpy dtypes.
BY_NUMPY = {d.np: d for d in DTYPES}
_F32, _F64, _I64, _BOOL, _I8 = (d.np for d in (float32, float64, int64, bool_, int8))
_BY_RANK = {d._rank: d.np for d in DTYPES}

# Pairs of distinct buffer dtypes -> result dtype (all numpy dtypes: the hot path compares them).
PROMOTE = {(a.np, b.np): _BY_RANK[max(a._rank, b._rank)] for a in DTYPES for b in DTYPES}

# (tensor dtype, Python scalar type) -> result dtype: scalars only lift the kind.
SCALAR_PROMOTE = {}
for _d in DTYPES:
    SCALAR_PROMOTE[(_d.np, bool)] = _d.np
    SCALAR_PROMOTE[(_d.np, int)] = _I64 if _d is bool_ else _d.np
    SCALAR_PROMOTE[(_d.np, float)] = _d.np if _d.is_floating_point else _F32


def as_dtype(d) -> DType:
    """Turn ``neurenix.float32``, ``"float32"``, ``numpy.float32``, ``float``... into a DType."""
    if isinstance(d, DType):
        return d
    if d is float:
        return default_float
    if d is int:
        return int64
    if d is bool or d == "bool":
        return bool_
    try:
        npd = np.dtype(d)
    except TypeError:
        npd = None
    if npd is not None and npd in BY_NUMPY:
        return BY_NUMPY[npd]
    names = ", ".join(x.name for x in DTYPES)
    raise TypeError(f"unsupported dtype {d!r}: neurenix supports {names}")


def from_numpy_kind(npd: np.dtype) -> DType:
    """The dtype a NumPy array of dtype ``npd`` becomes (int8 stays, other integers -> int64, float16 -> float32)."""
    if npd in BY_NUMPY:
        return BY_NUMPY[npd]
    kind = npd.kind
    if kind in "iu":
        return int64
    if kind == "f" and npd.itemsize < 8:
        return float32
    raise TypeError(f"cannot make a tensor from NumPy dtype {npd}: supported are float32, float64, int64, bool, "
                    "int8")


def canonical(array: np.ndarray) -> np.ndarray:
    """``array`` with NumPy's own dtype object for its dtype (a view, no copy). Kernels compare dtypes by
    identity: an equal but distinct object (``np.dtype('<f4').newbyteorder('=')``, which arrays read from
    files may carry) would silently send them down another path."""
    npd = array.dtype
    own = np.dtype(npd.type)
    return array if npd is own or npd != own else array.view(own)


def scalar_dtype(value) -> DType:
    """The dtype a Python scalar gets on its own (``torch.tensor`` rules)."""
    if isinstance(value, (bool, np.bool_)):
        return bool_
    if isinstance(value, (int, np.integer)):
        return int64
    if isinstance(value, (float, np.floating)):
        return default_float
    raise TypeError(f"cannot make a tensor from {type(value).__name__}: expected a number")


def set_default_dtype(d) -> None:
    """Make ``d`` (float32 or float64) the dtype of new float tensors: Python floats, ``zeros``, ``randn``...
    (Promotions of int64 with a float keep giving float32.)"""
    global default_float
    dt = as_dtype(d)
    if not dt.is_floating_point:
        raise TypeError(f"set_default_dtype: the default dtype must be float32 or float64, not {dt}")
    default_float = dt


def get_default_dtype() -> DType:
    """The dtype of new float tensors (float32 unless ``set_default_dtype`` changed it)."""
    return default_float
