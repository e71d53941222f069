"""The Bernoulli distribution: 1 with probability ``probs``, else 0."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from ..creation import bernoulli
from ..tensor import Tensor
from .categorical import _one_of
from .distribution import Distribution
from .utils import broadcast_all, logits_to_probs, probs_to_logits, softplus


class Bernoulli(Distribution):
    """``Bernoulli(probs=None, logits=None)``: 1 with probability ``probs`` (in [0, 1]) or ``sigmoid(logits)``;
    the parameter's shape is the batch shape. Samples are 0.0 and 1.0 in the parameter's dtype."""

    _params = ("probs",)
    _support = "0 or 1"

    def __init__(self, probs=None, logits=None, validate_args: bool | None = None):
        if isinstance(probs, (int, float)) or isinstance(logits, (int, float)):
            probs, logits = (None, *broadcast_all(logits)) if probs is None else (*broadcast_all(probs), None)
        given = _one_of(probs, logits, "Bernoulli")
        super().__init__(given.shape, (), validate_args)
        arr = np.asarray(given.detach().numpy())
        if probs is not None:
            self._check_parameter("probs", probs, (arr >= 0) & (arr <= 1), "in [0, 1]")
            self.probs = probs
        else:
            self._check_parameter("logits", logits, ~np.isnan(arr), "real numbers")
            self.logits = logits

    @cached_property
    def probs(self) -> Tensor:
        return logits_to_probs(self.logits, is_binary=True)

    @cached_property
    def logits(self) -> Tensor:
        return probs_to_logits(self.probs, is_binary=True)

    @property
    def mean(self) -> Tensor:
        return self.probs

    @property
    def variance(self) -> Tensor:
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape=()) -> Tensor:
        """0.0 or 1.0 draws of shape ``sample_shape + batch_shape``."""
        shape = self._extended_shape(sample_shape)
        return bernoulli(self.probs.detach().expand(shape))

    def log_prob(self, value: Tensor) -> Tensor:
        """``value * log(p) + (1 - value) * log(1 - p)``, computed from the logits."""
        value = self._validate_sample(value, "log_prob")
        logits, value = broadcast_all(self.logits, value.to(self.logits.dtype))
        return logits * value - softplus(logits)

    def entropy(self) -> Tensor:
        """The entropy per distribution of the batch."""
        return softplus(self.logits) - self.probs * self.logits

    def _in_support(self, value: np.ndarray) -> np.ndarray:
        return (value == 0) | (value == 1)


__all__ = ["Bernoulli"]
