"""The normal (Gaussian) distribution."""

from __future__ import annotations

import math

import numpy as np

from ..creation import randn
from ..tensor import Tensor
from .distribution import Distribution
from .utils import broadcast_all


class Normal(Distribution):
    """``Normal(loc, scale)``: mean ``loc``, standard deviation ``scale`` (> 0); tensors or numbers,
    broadcast together into the batch shape. ``rsample`` is reparameterised (``loc + scale * eps``)."""

    has_rsample = True
    _params = ("loc", "scale")
    _support = "real numbers"

    def __init__(self, loc, scale, validate_args: bool | None = None):
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(self.loc.shape, (), validate_args)
        if self._validate_args:
            self._check_parameter("loc", self.loc, ~np.isnan(self.loc.detach().numpy()), "a real number")
            self._check_parameter("scale", self.scale, self.scale.detach().numpy() > 0, "positive")

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def stddev(self) -> Tensor:
        return self.scale

    @property
    def variance(self) -> Tensor:
        return self.scale ** 2

    def rsample(self, sample_shape=()) -> Tensor:
        """``loc + scale * eps`` with standard normal ``eps``: differentiable in ``loc`` and ``scale``."""
        eps = randn(self._extended_shape(sample_shape), dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + eps * self.scale

    def log_prob(self, value: Tensor) -> Tensor:
        """The log-density at ``value``."""
        value = self._validate_sample(value, "log_prob")
        return -((value - self.loc) ** 2) / (2 * self.variance) - self.scale.log() - math.log(math.sqrt(2 * math.pi))

    def cdf(self, value: Tensor) -> Tensor:
        """The probability of a draw at most ``value``."""
        value = self._validate_sample(value, "cdf")
        return 0.5 * (1 + ((value - self.loc) / (self.scale * math.sqrt(2))).erf())

    def entropy(self) -> Tensor:
        """The differential entropy, per distribution of the batch."""
        return 0.5 + 0.5 * math.log(2 * math.pi) + self.scale.log()

    def _in_support(self, value: np.ndarray) -> np.ndarray:
        return ~np.isnan(value)


__all__ = ["Normal"]
