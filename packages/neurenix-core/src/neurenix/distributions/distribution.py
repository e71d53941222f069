"""The base of every distribution: shapes, sampling, and checking parameters and values."""

from __future__ import annotations

import numpy as np

from .. import arguments
from ..autograd import grad_mode
from ..tensor import Tensor


class Distribution:
    """A batch of distributions of one family (PyTorch's ``torch.distributions.Distribution``).

    ``batch_shape`` is the shape of the batch of parameters, ``event_shape`` that of one draw (``()`` for the
    scalar distributions here); ``sample(sample_shape)`` has shape ``sample_shape + batch_shape + event_shape``.
    With ``validate_args`` (on by default, as in PyTorch; see ``set_default_validate_args``) bad parameters and
    values outside the support raise a ValueError.
    """

    has_rsample = False
    _validate_default = True

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        """Check arguments (or not) in distributions made without ``validate_args``."""
        Distribution._validate_default = arguments.boolean(value, "value", "set_default_validate_args")

    def __init__(self, batch_shape: tuple = (), event_shape: tuple = (), validate_args: bool | None = None):
        self._batch_shape = tuple(batch_shape)
        self._event_shape = tuple(event_shape)
        self._validate_args = self._validate_default if validate_args is None else bool(validate_args)

    @property
    def batch_shape(self) -> tuple:
        return self._batch_shape

    @property
    def event_shape(self) -> tuple:
        return self._event_shape

    @property
    def stddev(self) -> Tensor:
        """The standard deviation: the square root of ``variance``."""
        return self.variance.sqrt()

    def sample(self, sample_shape=()) -> Tensor:
        """Draws of shape ``sample_shape + batch_shape + event_shape``, cut from the graph."""
        with grad_mode.no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=()) -> Tensor:
        """Draws through which gradients flow to the parameters (reparameterised)."""
        raise NotImplementedError(f"{type(self).__name__} has no rsample: its samples are not a differentiable "
                                  "function of its parameters; use sample()")

    def _extended_shape(self, sample_shape) -> tuple:
        return arguments.shape((sample_shape,), f"{type(self).__name__}.sample") + self._batch_shape + \
            self._event_shape

    def _check_parameter(self, name: str, value: Tensor, ok: np.ndarray, constraint: str) -> None:
        """Raise if some of ``value``'s elements fail (``ok`` false there) while validating."""
        if self._validate_args and not np.all(ok):
            bad = np.asarray(value.detach().numpy())[~np.broadcast_to(ok, value.shape)]
            raise ValueError(f"{type(self).__name__}: parameter {name} (shape {value.shape}) must be {constraint}, "
                             f"but has the values {bad[:5].tolist()}{' ...' if bad.size > 5 else ''}")

    def _validate_sample(self, value, op: str) -> Tensor:
        """``value`` checked: a tensor, broadcastable with the batch, and in the support (``_in_support``)."""
        name = f"{type(self).__name__}.{op}"
        if not isinstance(value, Tensor):
            raise TypeError(f"{name}: value must be a Tensor, got {type(value).__name__}")
        if not self._validate_args:
            return value
        try:
            np.broadcast_shapes(value.shape, self._batch_shape + self._event_shape)
        except ValueError:
            raise ValueError(f"{name}: a value of shape {value.shape} does not broadcast with the batch shape "
                             f"{self._batch_shape}") from None
        ok = self._in_support(np.asarray(value.detach().numpy()))
        if not np.all(ok):
            bad = np.asarray(value.detach().numpy())[~ok]
            raise ValueError(f"{name}: the value must be within the support of {type(self).__name__} "
                             f"({self._support}), but has {bad[:5].tolist()}{' ...' if bad.size > 5 else ''}")
        return value

    def __repr__(self) -> str:
        params = ", ".join(f"{k}: {getattr(self, k).shape}" for k in self._params)
        return f"{type(self).__name__}({params})"


__all__ = ["Distribution"]
