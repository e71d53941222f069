"""Probability distributions, as PyTorch's ``torch.distributions``: ``Normal``, ``Categorical`` and
``Bernoulli`` with ``sample`` / ``rsample``, ``log_prob``, ``entropy``, ``mean``, ``variance`` and ``stddev``.

Samples are drawn from neurenix's generator (``neurenix.manual_seed``) through the same path as ``randn``, so
a compiled function draws fresh ones at every replay. ``log_prob`` and ``entropy`` are differentiable in the
parameters, and ``Normal.rsample`` in its parameters too (reparameterised: ``loc + scale * eps``).
"""

from .bernoulli import Bernoulli
from .categorical import Categorical
from .distribution import Distribution
from .normal import Normal

__all__ = ["Bernoulli", "Categorical", "Distribution", "Normal"]
