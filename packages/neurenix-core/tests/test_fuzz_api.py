"""Property-based: the public API called with random arguments, invalid ones included, raises only the
documented exception types, from neurenix's own code (neurenix.testing.errors), and never hangs.

Examples are drawn from a fixed seed so CI is repeatable; ``NEURENIX_FUZZ_EXAMPLES=2000`` draws more,
from a fresh seed, to search further.
"""

from __future__ import annotations

import os
import signal
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neurenix as nx
from neurenix.testing.errors import check_error

F = nx.nn.functional
EXAMPLES = int(os.environ.get("NEURENIX_FUZZ_EXAMPLES", "25"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize="NEURENIX_FUZZ_EXAMPLES" not in os.environ,
                    suppress_health_check=list(HealthCheck), database=None)

DTYPES = ["float32", "float64", "int64", "bool"]
SHAPES = [(), (0,), (1,), (3,), (2, 3), (0, 3), (3, 1), (1, 2, 3), (2, 1, 4, 4), (1, 1, 3, 3), (2, 3, 0)]


@st.composite
def tensors(draw):
    shape = draw(st.sampled_from(SHAPES))
    dtype = draw(st.sampled_from(DTYPES))
    special = draw(st.sampled_from([None, np.nan, np.inf, -np.inf, 0.0]))
    values = np.random.default_rng(draw(st.integers(0, 9))).standard_normal(shape) * 3
    if special is not None and values.size:
        values.flat[0] = special
    if dtype in ("int64", "bool"):
        values = np.nan_to_num(values, nan=0, posinf=5, neginf=-5)
    return nx.tensor(values.astype(dtype), requires_grad=draw(st.booleans()) and dtype.startswith("float"))


scalars = st.one_of(
    st.integers(-4, 12), st.sampled_from([2 ** 63, -2 ** 63, 2 ** 70]), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.none(), st.sampled_from(["a", "", "mean", "float32", "cpu", "gpu", "sum", "none"]))
small_ints = st.integers(-3, 6)
values = st.one_of(scalars, tensors(), st.tuples(small_ints, small_ints), st.lists(small_ints, max_size=4),
                   st.lists(st.floats(-2, 2), max_size=3), st.tuples(small_ints, small_ints, small_ints, small_ints))
KEYWORDS = ["dim", "keepdim", "dtype", "device", "stride", "padding", "dilation", "groups", "reduction", "p",
            "training", "lr", "momentum", "betas", "eps", "weight_decay", "bias", "kernel_size", "label_smoothing",
            "alpha", "min", "max", "requires_grad", "num_classes", "correction", "size", "beta", "delta", "log_target",
            "pos_weight"]


def _t():
    return nx.randn(2, 3)


# name -> callable; each takes the drawn positional and keyword arguments
CALLS = {
    **{name: getattr(nx, name) for name in [
        "zeros", "ones", "empty", "full", "arange", "linspace", "eye", "rand", "randn", "randint", "randperm", "tensor",
        "manual_seed", "cat", "stack", "where", "matmul", "maximum", "minimum", "abs", "exp", "log", "sqrt", "relu",
        "sigmoid", "tanh", "sin", "cos", "sign", "clamp", "sum", "mean", "amax", "amin", "argmax", "argmin", "max",
        "min", "var", "std", "softmax", "log_softmax", "logsumexp", "reshape", "permute", "transpose", "squeeze",
        "unsqueeze", "flatten", "gather", "zeros_like", "ones_like", "full_like", "rand_like", "randn_like", "any",
        "all", "flip", "roll", "tril", "triu", "nonzero", "masked_select", "prod", "median"]},
    **{f"F.{name}": getattr(F, name) for name in [
        "conv2d", "max_pool2d", "avg_pool2d", "pad", "batch_norm", "dropout", "cross_entropy", "mse_loss", "l1_loss",
        "nll_loss", "binary_cross_entropy_with_logits", "one_hot", "linear", "softmax", "unfold", "fold", "conv1d",
        "max_pool1d", "avg_pool1d", "layer_norm", "group_norm", "embedding", "dropout2d", "silu", "elu", "softplus",
        "binary_cross_entropy", "smooth_l1_loss", "huber_loss", "kl_div"]},
    **{f"Tensor.{name}": (lambda method: lambda *a, **k: getattr(_t(), method)(*a, **k))(name) for name in [
        "reshape", "view", "permute", "transpose", "expand", "squeeze", "unsqueeze", "flatten", "unflatten", "sum",
        "mean", "max", "argmax", "var", "softmax", "gather", "index_put", "clamp", "pow", "add", "sub", "mul", "div",
        "matmul", "__getitem__", "__setitem__", "to", "type_as", "fill_", "add_", "mul_", "copy_", "clamp_",
        "requires_grad_", "maximum", "eq", "lt", "logical_and", "expand_as", "view_as"]},
    **{f"nn.{name}": getattr(nx.nn, name) for name in [
        "Linear", "Conv2d", "BatchNorm1d", "BatchNorm2d", "Dropout", "MaxPool2d", "AvgPool2d", "Sequential", "Flatten",
        "Softmax", "LogSoftmax", "CrossEntropyLoss", "MSELoss", "LayerNorm", "GroupNorm", "Embedding", "Conv1d",
        "MaxPool1d", "AvgPool1d", "AdaptiveAvgPool2d", "Dropout2d", "ModuleDict", "MultiheadAttention",
        "TransformerEncoderLayer", "ELU", "Softplus", "BCELoss", "BCEWithLogitsLoss", "SmoothL1Loss", "HuberLoss",
        "KLDivLoss", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]},
    "nn.Linear(3, 2)(x)": lambda *a, **k: nx.nn.Linear(3, 2)(*a, **k),
    "nn.Conv2d(1, 2, 3)(x)": lambda *a, **k: nx.nn.Conv2d(1, 2, 3)(*a, **k),
    "nn.BatchNorm2d(1)(x)": lambda *a, **k: nx.nn.BatchNorm2d(1)(*a, **k),
    "nn.LayerNorm(3)(x)": lambda *a, **k: nx.nn.LayerNorm(3)(*a, **k),
    "nn.Embedding(5, 3)(x)": lambda *a, **k: nx.nn.Embedding(5, 3)(*a, **k),
    "nn.MultiheadAttention(4, 2)(x)": lambda *a, **k: nx.nn.MultiheadAttention(4, 2)(*a, **k),
    "nn.LSTM(3, 2)(x)": lambda *a, **k: nx.nn.LSTM(3, 2)(*a, **k),
    "nn.GRUCell(3, 2)(x)": lambda *a, **k: nx.nn.GRUCell(3, 2)(*a, **k),
    **{f"optim.{name}": (lambda cls: lambda *a, **k: cls([nx.zeros(2, requires_grad=True)], *a, **k))(
        getattr(nx.optim, name)) for name in ["SGD", "Adam", "AdamW", "LBFGS"]},
    "optim.LBFGS.step": lambda *a, **k: nx.optim.LBFGS([nx.zeros(2, requires_grad=True)]).step(*a, **k),
    **{f"linalg.{name}": getattr(nx.linalg, name) for name in ["solve", "solve_triangular", "cholesky"]},
    "linalg.solve_triangular(upper=True)": lambda *a, **k: nx.linalg.solve_triangular(*a, upper=True, **k),
    "autograd.grad": lambda *a, **k: nx.autograd.grad(*a, **k),
    **{f"autograd.functional.{name}": getattr(nx.autograd.functional, name) for name in ["jacobian", "vjp"]},
    "autograd.functional.jacobian(f)": lambda *a, **k: nx.autograd.functional.jacobian(lambda t: t * 2, *a, **k),
    "autograd.functional.hessian(f)": lambda *a, **k: nx.autograd.functional.hessian(lambda t: (t ** 3).sum(), *a,
                                                                                     **k),
    "autograd.functional.jvp(f)": lambda *a, **k: nx.autograd.functional.jvp(lambda t: t.exp(), *a, **k),
    "backward": lambda *a, **k: (nx.randn(3, requires_grad=True) * 2).sum().backward(*a, **k),
}


class HangError(Exception):
    pass


def _alarm(signum, frame):
    raise HangError("a call did not return within 10 s")


@pytest.mark.parametrize("name", CALLS)
@SETTINGS
@given(args=st.lists(values, max_size=4), kwargs=st.dictionaries(st.sampled_from(KEYWORDS), values, max_size=2))
def test_only_documented_errors(name, args, kwargs):
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(10)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # IEEE results (inf, nan) are not errors
            CALLS[name](*args, **kwargs)
    except HangError:
        raise
    except Exception as e:
        check_error(e)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
