"""Linear algebra, as ``torch.linalg``: ``solve``, ``solve_triangular``, ``cholesky`` and ``inv``, on every backend and
differentiable to any order (their gradients are built from these same ops). A singular matrix, or one that is not
positive-definite, raises ``LinAlgError`` (a ``RuntimeError``). Matrix products are ``neurenix.matmul``."""

from .errors import LinAlgError
from .ops.solvers import cholesky, inv, solve, solve_triangular

__all__ = ["LinAlgError", "cholesky", "inv", "solve", "solve_triangular"]
