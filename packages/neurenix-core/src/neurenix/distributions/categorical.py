"""The categorical distribution over ``0 .. K-1``."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from .. import dtypes
from ..creation import rand
from ..tensor import Tensor
from .distribution import Distribution
from .utils import logits_to_probs, probs_to_logits


def _one_of(probs, logits, name: str):
    """The parameter given: exactly one of ``probs`` and ``logits``."""
    if (probs is None) == (logits is None):
        raise ValueError(f"{name}: give either probs or logits, not both and not neither")
    given = probs if probs is not None else logits
    if not isinstance(given, Tensor):
        raise TypeError(f"{name}: {'probs' if probs is not None else 'logits'} must be a Tensor, got "
                        f"{type(given).__name__}")
    if not given.is_floating_point():
        raise TypeError(f"{name}: {'probs' if probs is not None else 'logits'} must be a float tensor, not "
                        f"{given.dtype}")
    return given


class Categorical(Distribution):
    """``Categorical(probs=None, logits=None)``: one of ``K`` categories, with probabilities (non-negative
    weights, normalised over the last dimension) or logits (unnormalised log-probabilities) along the last
    dimension; the leading dimensions are the batch. Samples are int64 indices."""

    _params = ("probs",)
    _support = "integers 0 .. K-1"

    def __init__(self, probs: Tensor | None = None, logits: Tensor | None = None, validate_args: bool | None = None):
        given = _one_of(probs, logits, "Categorical")
        if given.ndim < 1:
            raise ValueError(f"Categorical: {'probs' if probs is not None else 'logits'} must have at least one "
                             "dimension (the categories)")
        super().__init__(given.shape[:-1], (), validate_args)
        self._num_events = given.shape[-1]
        if probs is not None:
            arr = np.asarray(probs.detach().numpy())
            self._check_parameter("probs", probs, (arr >= 0) & np.isfinite(arr), "finite and non-negative")
            self._check_parameter("probs", probs, np.broadcast_to(arr.sum(-1, keepdims=True) > 0, arr.shape),
                                  "not all zero along the last dimension")
            self.probs = probs / probs.sum(-1, keepdim=True)
        else:
            self._check_parameter("logits", logits, ~np.isnan(logits.detach().numpy()), "real numbers")
            self.logits = logits - logits.logsumexp(-1, keepdim=True)

    @cached_property
    def probs(self) -> Tensor:
        return logits_to_probs(self.logits)

    @cached_property
    def logits(self) -> Tensor:
        return probs_to_logits(self.probs)

    @property
    def mean(self) -> Tensor:
        """Undefined for categories (NaN), as in PyTorch."""
        return self.probs.new_full(self._batch_shape, float("nan"))

    @property
    def variance(self) -> Tensor:
        """Undefined for categories (NaN), as in PyTorch."""
        return self.probs.new_full(self._batch_shape, float("nan"))

    @property
    def mode(self) -> Tensor:
        return self.probs.argmax(-1)

    def sample(self, sample_shape=()) -> Tensor:
        """int64 indices of shape ``sample_shape + batch_shape``, by inverting the cumulative probabilities."""
        shape = self._extended_shape(sample_shape)
        cdf = self.probs.detach().to(dtypes.float64).cumsum(-1)
        u = rand(shape + (1,), dtype=dtypes.float64, device=cdf.device) * cdf[..., -1:]
        return (cdf <= u).sum(-1)

    def log_prob(self, value: Tensor) -> Tensor:
        """The log-probability of category ``value`` (an integer tensor broadcastable with the batch)."""
        value = self._validate_sample(value, "log_prob")
        shape = tuple(np.broadcast_shapes(value.shape, self._batch_shape))
        index = value.to(dtypes.int64).unsqueeze(-1).expand(shape + (1,))
        return self.logits.expand(shape + (self._num_events,)).gather(-1, index).squeeze(-1)

    def entropy(self) -> Tensor:
        """``-sum(p log p)`` per distribution of the batch (categories of probability 0 add nothing)."""
        logits = self.logits.clamp(min=float(np.finfo(self.logits.dtype.np).min))
        return -(logits * self.probs).sum(-1)

    def _in_support(self, value: np.ndarray) -> np.ndarray:
        return (value == np.floor(value)) & (value >= 0) & (value < self._num_events)


__all__ = ["Categorical"]
