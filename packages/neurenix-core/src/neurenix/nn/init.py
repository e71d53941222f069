"""Weight initialisers (``torch.nn.init``'s names, parameter names and order), drawing from neurenix's seeded
generator, or from ``generator=``: a ``neurenix.Generator`` (as PyTorch's ``torch.Generator``) or a
``numpy.random.Generator``; anything else is refused."""

from __future__ import annotations

import math

import numpy as np

from .. import random as _random
from ..autograd.grad_mode import no_grad
from ..tensor import Tensor, full_like


def _tensor(tensor, fn: str) -> Tensor:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"nn.init.{fn}: tensor must be a Tensor, got {type(tensor).__name__}")
    return tensor


def _rng(generator, fn: str) -> np.random.Generator:
    default = _random.generator()  # called either way: it refuses inside a captured program, which would not redraw
    return _random.numpy_generator(generator, f"nn.init.{fn}") or default


def _fill_from_host(t: Tensor, values) -> Tensor:
    with no_grad():
        t._set(t._device.kernels.from_numpy(values.astype(t._data.dtype, copy=False), t._device.index), "nn.init")
    return t


_UNIT_GAIN = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
              "sigmoid", "identity")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for an activation, as in PyTorch."""
    if nonlinearity in _UNIT_GAIN:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")


def fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out need at least 2 dimensions, got shape {tensor.shape}")
    receptive = 1
    for s in tensor.shape[2:]:
        receptive *= s
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: np.random.Generator | None = None) -> Tensor:
    return _uniform(tensor, a, b, generator, "uniform_")


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0,
            generator: np.random.Generator | None = None) -> Tensor:
    return _normal(tensor, mean, std, generator, "normal_")


def _uniform(tensor, a: float, b: float, generator, fn: str) -> Tensor:
    """``uniform_`` for the public ``fn``, which errors name."""
    rng = _rng(generator, fn)
    return _fill_from_host(_tensor(tensor, fn), rng.uniform(a, b, tensor.shape))


def _normal(tensor, mean: float, std: float, generator, fn: str) -> Tensor:
    rng = _rng(generator, fn)
    return _fill_from_host(_tensor(tensor, fn), rng.normal(mean, std, tensor.shape))


def constant_(tensor: Tensor, val: float) -> Tensor:
    with no_grad():
        _tensor(tensor, "constant_")._set(full_like(tensor, val)._data, "nn.init")
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: np.random.Generator | None = None) -> Tensor:
    fan_in, fan_out = fan_in_and_fan_out(_tensor(tensor, "xavier_uniform_"))
    if not tensor.numel():
        return tensor  # nothing to fill (and the fans may be zero)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _uniform(tensor, -bound, bound, generator, "xavier_uniform_")


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: np.random.Generator | None = None) -> Tensor:
    fan_in, fan_out = fan_in_and_fan_out(_tensor(tensor, "xavier_normal_"))
    if not tensor.numel():
        return tensor
    return _normal(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator, "xavier_normal_")


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: str, fn: str) -> float:
    fan_in, fan_out = fan_in_and_fan_out(_tensor(tensor, fn))
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"nn.init.{fn}: mode must be 'fan_in' or 'fan_out', not {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan) if fan else 0.0  # zero fan: an empty tensor


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator: np.random.Generator | None = None) -> Tensor:
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_uniform_")
    return _uniform(tensor, -bound, bound, generator, "kaiming_uniform_")


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator: np.random.Generator | None = None) -> Tensor:
    return _normal(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_normal_"), generator,
                   "kaiming_normal_")
