"""Embedding: a lookup table (PyTorch's ``torch.nn.modules.sparse``)."""

from __future__ import annotations

from .. import creation
from ..arguments import integer
from ..autograd.grad_mode import no_grad
from ..errors import ShapeError
from ..ops import expect_tensor as tensor
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module, Parameter
from .task_axis import by_task, has_task_axis, task_count


class Embedding(Module):
    """Row ``i`` of ``weight`` (num_embeddings, embedding_dim) for each int64 index ``i`` of the input.

    Initialised N(0, 1) with the ``padding_idx`` row zero, as PyTorch's; entries at ``padding_idx`` pass no gradient
    to that row. With ``max_norm``, each row looked up whose ``norm_type``-norm exceeds it is scaled to it in
    place first, as PyTorch's. ``scale_grad_by_freq`` and ``sparse`` are not supported (they raise).
    """

    stacks_tasks = True  # row-wise: (tasks, rows, ...) indices as they are

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                 sparse: bool = False, _weight: Tensor | None = None, _freeze: bool = False, device=None, dtype=None):
        super().__init__()
        self.num_embeddings = integer(num_embeddings, "num_embeddings", "Embedding", minimum=0)
        self.embedding_dim = integer(embedding_dim, "embedding_dim", "Embedding", minimum=0)
        F._embedding_options(scale_grad_by_freq, sparse, "Embedding")
        self.padding_idx = F._padding_idx(padding_idx, self.num_embeddings, "Embedding")
        self.max_norm, self.norm_type, self.scale_grad_by_freq, self.sparse = max_norm, norm_type, False, False
        if _weight is None:
            self.weight = Parameter(creation.empty(self.num_embeddings, self.embedding_dim, dtype=dtype,
                                                   device=device), requires_grad=not _freeze)
            self.reset_parameters()
        else:
            if tensor(_weight, "_weight", "Embedding").shape != (self.num_embeddings, self.embedding_dim):
                raise ShapeError(f"Embedding: _weight of shape {_weight.shape} does not match (num_embeddings, "
                                 f"embedding_dim) = {(self.num_embeddings, self.embedding_dim)}")
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with no_grad():
                self.weight[self.padding_idx] = 0.0

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True, padding_idx: int | None = None,
                        max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        sparse: bool = False) -> Embedding:
        """An Embedding whose weight is ``embeddings`` (2-D, shared, not copied), frozen unless ``freeze=False``."""
        if tensor(embeddings, "embeddings", "Embedding.from_pretrained").ndim != 2:
            raise ShapeError(f"Embedding.from_pretrained: embeddings must be 2-D (num_embeddings, embedding_dim), "
                             f"got shape {embeddings.shape}")
        return cls(*embeddings.shape, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=embeddings, _freeze=freeze)

    def forward(self, input: Tensor) -> Tensor:
        w = self.weight
        if not task_count() or not has_task_axis(w, 2, "Embedding"):
            return F.embedding(input, w, self.padding_idx, self.max_norm, self.norm_type)
        if self.max_norm is not None:
            raise RuntimeError("Embedding: max_norm rescales rows of the weight in place, which per-task weights "
                               "(batched_call, MAML) cannot take: give max_norm=None")
        n = w.shape[0]  # weight (tasks, num_embeddings, embedding_dim): task t's indices read its own table
        idx = by_task(tensor(input, "input", "Embedding"), n, "Embedding")
        tasks = creation.arange(n, device=w.device).reshape((n,) + (1,) * (idx.ndim - 1))
        return F._embed(idx, w, tasks, self.padding_idx, "Embedding").reshape(*input.shape, w.shape[-1])

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}" + (
            "" if self.padding_idx is None else f", padding_idx={self.padding_idx}")
