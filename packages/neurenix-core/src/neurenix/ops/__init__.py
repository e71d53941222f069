"""Differentiable ops on tensors.

Each op checks its operands, calls one kernel of the device's table, and, when recording, attaches a
vjp written with these same ops, so every gradient is itself differentiable.
"""

from ._operands import Tensor
from .elementwise import (
                          abs,
                          add,
                          cast,
                          clamp,
                          cos,
                          div,
                          eq,
                          exp,
                          ge,
                          gt,
                          le,
                          log,
                          logical_and,
                          logical_not,
                          logical_or,
                          lt,
                          maximum,
                          minimum,
                          mul,
                          ne,
                          neg,
                          pow,
                          rdiv,
                          relu,
                          relu_backward,
                          rpow,
                          rsqrt,
                          rsub,
                          sigmoid,
                          sign,
                          sin,
                          sqrt,
                          square,
                          sub,
                          tanh,
                          where,
)
from .linalg import linear, matmul
from .methods import install
from .movement import (
                          T,
                          cat,
                          clone,
                          expand,
                          flatten,
                          gather,
                          getitem,
                          index_put,
                          mT,
                          pad,
                          permute,
                          reshape,
                          squeeze,
                          stack,
                          to_device,
                          transpose,
                          unflatten,
                          unsqueeze,
)
from .reduce import (
                          all,
                          amax,
                          amin,
                          any,
                          argmax,
                          argmin,
                          log_softmax,
                          logsumexp,
                          max,
                          mean,
                          min,
                          softmax,
                          softmax_cross_entropy,
                          std,
                          sum,
                          var,
)
from .window import fold, fold_batch, unfold, unfold_batch

install(Tensor)  # Tensor's operators and methods are these ops

__all__ = [
    "T", "abs", "add", "all", "amax", "amin", "any", "argmax", "argmin", "cast", "cat", "clamp", "clone", "cos",
    "div", "eq", "exp", "expand", "flatten", "fold", "fold_batch", "gather", "ge", "getitem", "gt", "index_put",
    "le", "linear", "log", "log_softmax", "logical_and", "logical_not", "logical_or", "logsumexp", "lt", "mT",
    "matmul", "max", "maximum", "mean", "min", "minimum", "mul", "ne", "neg", "pad", "permute", "pow", "rdiv", "relu",
    "relu_backward", "reshape", "rpow", "rsqrt", "rsub", "sigmoid", "sign", "sin", "softmax", "softmax_cross_entropy",
    "sqrt", "square", "squeeze", "stack", "std", "sub", "sum", "tanh", "to_device", "transpose", "unflatten",
    "unfold", "unfold_batch", "unsqueeze", "var", "where",
]
