"""R2-D2 (Bertinetto et al., 2019, "Meta-learning with differentiable closed-form solvers"): each task's classifier
is a ridge regression on the support embeddings, solved in closed form, so the meta-gradient goes through the solver
(``neurenix.linalg.solve`` and its vjp) to the embedding."""

from __future__ import annotations

import math

import neurenix as nx
from neurenix import Tensor
from neurenix.errors import ShapeError
from neurenix.nn import Module, Parameter

from . import checks
from .metric import MetricLearner, features


class R2D2(MetricLearner):
    """Ridge regression to the one-hot support labels Y from the support embeddings X (rows, features), in
    Woodbury's form, a (support rows x support rows) system however wide the embedding:
    ``W = X^T (X X^T + lam I)^-1 Y``; query logits are ``alpha * (X_q W) + beta``.

    ``alpha`` (scale) and ``beta`` (bias) calibrate the regression outputs for the cross-entropy; they and the
    regularisation ``lam`` (learned as ``log_lam``, so it stays positive) are meta-learned with the embedding,
    as in the paper; ``learn_lambda=False`` keeps ``lam`` fixed. Defaults: ``lam=1.0`` (the authors' code's
    initial lambda), ``alpha=1.0`` and ``beta=0.0`` (the R2D2 heads of MetaOptNet and LibFewShot).
    """

    def __init__(self, embedding_model: Module, lam: float = 1.0, learn_lambda: bool = True, alpha: float = 1.0,
                 beta: float = 0.0, meta_lr: float = 0.001):
        super().__init__(embedding_model, meta_lr)
        self._initial = {"lam": checks.positive("lam", lam), "learn_lambda": checks.flag("learn_lambda", learn_lambda),
                         "alpha": checks.finite("alpha", alpha), "beta": checks.finite("beta", beta)}
        like = next(iter(embedding_model.parameters()), None)  # the scalars live with the embedding's parameters
        dtype, device = (nx.get_default_dtype(), None) if like is None else (like.dtype, like.device)

        def scalar(value: float) -> Tensor:
            return nx.tensor(value, dtype=dtype, device=device)

        self.alpha, self.beta = Parameter(scalar(alpha)), Parameter(scalar(beta))
        if learn_lambda:
            self.log_lam = Parameter(scalar(math.log(lam)))
        else:
            self.register_buffer("log_lam", scalar(math.log(lam)))

    @property
    def lam(self) -> Tensor:
        """The ridge regularisation, ``exp(log_lam)``."""
        return self.log_lam.exp()

    def hyperparameters(self) -> dict:
        return super().hyperparameters() | self._initial

    def ridge_weights(self, support: Tensor, one_hot: Tensor) -> Tensor:
        """The ridge-regression weights (tasks, features, classes) of support embeddings (tasks, rows, ...) and
        one-hot labels (tasks, rows, classes): ``X^T (X X^T + lam I)^-1 Y``."""
        _check_support(support, one_hot)
        x = features(support)
        rows = x.shape[1]
        gram = x @ x.mT + self.lam * nx.eye(rows, dtype=x.dtype, device=x.device)
        return x.mT @ nx.linalg.solve(gram, one_hot.to(x.dtype))

    def scores(self, query: Tensor, support: Tensor, one_hot: Tensor) -> Tensor:
        return self.alpha * (features(query) @ self.ridge_weights(support, one_hot)) + self.beta


def _check_support(support: Tensor, one_hot: Tensor) -> None:
    ok = isinstance(support, Tensor) and isinstance(one_hot, Tensor) and support.ndim >= 3 and one_hot.ndim == 3
    if not ok or support.shape[:2] != one_hot.shape[:2]:
        shapes = [tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__ for t in (support, one_hot)]
        raise ShapeError(f"R2D2: support embeddings {shapes[0]} and one-hot labels {shapes[1]} must be (tasks, rows, "
                         "features...) and (tasks, rows, classes) with the same tasks and rows")
