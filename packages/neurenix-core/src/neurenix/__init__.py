"""Neurenix: a small deep-learning framework for meta-learning.

Tensors with autograd of any order (``neurenix.autograd``), layers (``neurenix.nn``), optimizers
(``neurenix.optim``), and devices provided by backend plugins (``neurenix.backend``).
"""

# neurenix.meta ships in another distribution (neurenix-meta): let this package span several directories.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

__version__ = "0.1.0"

from . import (
    accelerator,  # as torch.accelerator
    arguments,  # noqa: F401 - a public module: neurenix.arguments
    autograd,
    cuda,
    device,  # a module, also callable as PyTorch's torch.device: neurenix.device("cpu")
    distributed,
    distributions,
    func,
    linalg,  # as torch.linalg: solve, solve_triangular, cholesky
    nn,
    optim,
    quantization,  # as torch.ao.quantization: quantize_dynamic, prepare, convert
    rocm,
    utils,  # as torch.utils: neurenix.utils.data, neurenix.utils.checkpoint
    webgpu,
)
from .autograd import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .backend import get_num_threads, list_backends, set_num_threads
from .capture.compiled import CaptureWarning, Compiled, compile
from .creation import (
    arange,
    as_tensor,
    bernoulli,
    empty,
    eye,
    from_dlpack,
    from_numpy,
    full,
    linspace,
    logspace,
    multinomial,
    normal,
    ones,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    zeros,
)
from .device import Device, DeviceType, default_device, get_device_count, set_default_device, synchronize
from .dtypes import DType, bool_, float32, float64, get_default_dtype, int8, int64, set_default_dtype
from .errors import BackendError, DeviceError, DTypeError, InPlaceError, ShapeError
from .ops import (
    abs,
    all,
    allclose,
    amax,
    amin,
    any,
    argmax,
    argmin,
    argsort,
    bmm,
    cat,
    cdist,
    ceil,
    chunk,
    clamp,
    cos,
    cumprod,
    cumsum,
    einsum,
    erf,
    exp,
    expm1,
    flatten,
    flip,
    floor,
    floor_divide,
    gather,
    index_select,
    isclose,
    isfinite,
    isinf,
    isnan,
    log,
    log1p,
    log_softmax,
    logsumexp,
    masked_fill,
    masked_select,
    matmul,
    max,
    maximum,
    mean,
    median,
    min,
    minimum,
    mm,
    nonzero,
    norm,
    permute,
    prod,
    relu,
    remainder,
    reshape,
    roll,
    round,
    scatter,
    scatter_add,
    sigmoid,
    sign,
    sin,
    softmax,
    sort,
    split,
    sqrt,
    squeeze,
    stack,
    std,
    sum,
    t,
    tanh,
    topk,
    transpose,
    tril,
    triu,
    trunc,
    unique,
    unsqueeze,
    var,
    where,
)
from .ops import tensor_first as _tensor_first
from .random import Generator, manual_seed
from .serialization import load, save
from .tensor import Tensor, full_like, ones_like, tensor, zeros_like

# the functional API names a non-tensor first argument in a TypeError: the hot ops (elementwise, sum, mean,
# max, softmax, reshape, permute...) say it themselves at no cost; these others through a wrapper
(all, any, clamp, flatten, gather, max, min, squeeze, transpose, unsqueeze, full_like, ones_like,  # noqa: A001
 zeros_like, rand_like, randn_like, cumsum, cumprod) = (_tensor_first(f) for f in (
    all, any, clamp, flatten, gather, max, min, squeeze, transpose, unsqueeze, full_like, ones_like, zeros_like,
    rand_like, randn_like, cumsum, cumprod))

bool = bool_  # noqa: A001 - PyTorch's name: neurenix.bool
float = float32  # noqa: A001
double = float64
long = int64

_CONFIG_KEYS = ("device", "seed")


def init(config: dict | None = None, **options) -> Device:
    """Configure neurenix, as ``neurenix.init({"device": "cuda:0", "seed": 0})``; returns the default device.

    Keys: ``device`` (where new tensors and modules go; it must be usable here) and ``seed``.
    """
    if config is not None and not isinstance(config, dict):
        raise TypeError(f"neurenix.init: config must be a dict of settings, got {type(config).__name__}")
    options = {**(config or {}), **options}
    unknown = [k for k in options if k not in _CONFIG_KEYS]
    if unknown:  # a bad argument: ValueError, as the error contract asks (neurenix.testing.errors)
        raise ValueError(f"unknown neurenix.init option(s) {unknown}; known: {list(_CONFIG_KEYS)}")
    if "device" in options:
        set_default_device(options["device"])
    if "seed" in options:
        manual_seed(options["seed"])
    return default_device()


__all__ = [
    "BackendError",
    "CaptureWarning",
    "Compiled",
    "DType",
    "DTypeError",
    "Device",
    "DeviceError",
    "DeviceType",
    "Generator",
    "InPlaceError",
    "ShapeError",
    "Tensor",
    "abs",
    "accelerator",
    "all",
    "allclose",
    "amax",
    "amin",
    "any",
    "arange",
    "argmax",
    "argmin",
    "argsort",
    "as_tensor",
    "autograd",
    "bernoulli",
    "bmm",
    "bool",
    "cat",
    "cdist",
    "ceil",
    "chunk",
    "clamp",
    "compile",
    "cos",
    "cuda",
    "cumprod",
    "cumsum",
    "default_device",
    "device",
    "distributed",
    "distributions",
    "double",
    "einsum",
    "empty",
    "enable_grad",
    "erf",
    "exp",
    "expm1",
    "eye",
    "flatten",
    "flip",
    "float",
    "float32",
    "float64",
    "floor",
    "floor_divide",
    "from_dlpack",
    "from_numpy",
    "full",
    "full_like",
    "func",
    "gather",
    "get_default_dtype",
    "get_device_count",
    "get_num_threads",
    "index_select",
    "inference_mode",
    "init",
    "int8",
    "int64",
    "is_grad_enabled",
    "isclose",
    "isfinite",
    "isinf",
    "isnan",
    "linalg",
    "linspace",
    "list_backends",
    "load",
    "log",
    "log1p",
    "log_softmax",
    "logspace",
    "logsumexp",
    "long",
    "manual_seed",
    "masked_fill",
    "masked_select",
    "matmul",
    "max",
    "maximum",
    "mean",
    "median",
    "min",
    "minimum",
    "mm",
    "multinomial",
    "nn",
    "no_grad",
    "nonzero",
    "norm",
    "normal",
    "ones",
    "ones_like",
    "optim",
    "permute",
    "prod",
    "quantization",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "randperm",
    "relu",
    "remainder",
    "reshape",
    "rocm",
    "roll",
    "round",
    "save",
    "scatter",
    "scatter_add",
    "set_default_device",
    "set_default_dtype",
    "set_grad_enabled",
    "set_num_threads",
    "sigmoid",
    "sign",
    "sin",
    "softmax",
    "sort",
    "split",
    "sqrt",
    "squeeze",
    "stack",
    "std",
    "sum",
    "synchronize",
    "t",
    "tanh",
    "tensor",
    "topk",
    "transpose",
    "tril",
    "triu",
    "trunc",
    "unique",
    "unsqueeze",
    "utils",
    "var",
    "webgpu",
    "where",
    "zeros",
    "zeros_like",
]

#: parts of the neurenix namespace that other distributions install, and which one (for the error without it)
_PARTS = {"meta": "neurenix-meta"}


def __getattr__(name: str):
    """``neurenix.meta`` (and any installed part of the namespace) after a plain ``import neurenix``: imported on
    first use (PEP 562), so core never imports its dependants eagerly."""
    import importlib.util
    if name in _PARTS or (not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}" or name not in _PARTS:
                raise
            raise AttributeError(f"module 'neurenix' has no attribute {name!r}: it comes with the {_PARTS[name]} "
                                 f"distribution (pip install {_PARTS[name]})") from None
    raise AttributeError(f"module 'neurenix' has no attribute {name!r}")
