"""ANIL (Raghu et al., 2020): MAML that adapts only the head in the inner loop ("almost no inner loop")."""

from __future__ import annotations

from neurenix import Tensor
from neurenix.nn import Module, Sequential

from . import checks
from .batchnorm import task_call
from .maml import MAML, _Default
from .tasks import Batch

INNER_LR = _Default(0.05)  # inner_lr's default: the head alone takes (and needs) a larger step than MAML's 0.01


class ANIL(MAML):
    """ANIL: the inner loop adapts only ``head`` (the dotted name of a submodule; by default the model's
    last child that holds parameters, such as the final Linear of a Sequential); the body is shared by
    all tasks and learned by the outer loop alone, through the adapted heads' query losses. Everything
    else (second or first order, and MAML's keyword options) is as in ``MAML``. With a Sequential model
    whose head is followed only by parameter-free layers, the body runs once per meta-batch.

    ``clone()`` gives learn2learn's functional style on the whole model, adapting only the head; the
    learn2learn pattern ``head = MAML(head_module, lr=...)`` with a separate features module works as well.

    ``inner_lr`` defaults to 0.05, not MAML's 0.01: adapting a linear head on the body's features, five steps
    at 0.01 barely move it. On sine regression (1-40-40-1, 3,000 meta-iterations, seeds 0 / 1 / 2) the
    10-step 5-shot MSE is 0.44 / 0.56 / 0.48 at 0.05 (docs/quality.md, the defaults' runs) against 0.54 / 0.59 /
    0.56 at 0.01; at 0.1 meta-training failed on seed 0 (2.8 after 1 step, 1.8 after 10). The runs at 0.01 and
    0.1 are not kept in bench/results.
    """

    def __init__(self, model: Module, inner_lr: float = INNER_LR, meta_lr: float = 0.001, first_order: bool = False,
                 inner_steps: int = 5, *, head: str | None = None, **options):
        if "inner_params" in options:
            raise TypeError("ANIL chooses the adapted parameters with head=, not inner_params=")
        head = _head(checks.module("model", model), head)
        super().__init__(model, inner_lr, meta_lr, first_order, inner_steps, inner_params=[head], **options)
        self.head = head

    def hyperparameters(self) -> dict:
        return super().hyperparameters() | {"head": self.head}

    def inner_inputs(self, batch: Batch) -> tuple[Module, Tensor, Tensor]:
        """When the model is a Sequential and the head one of its children with only parameter-free
        layers after it, the body runs once per batch and the inner loop runs the rest on its features
        (the same values and gradients: the body does not change in the inner loop). Otherwise the whole
        model runs at every inner step."""
        model = self.model
        if self.batch_norm != "transductive":  # running statistics are kept for the whole model's passes
            return super().inner_inputs(batch)
        names = [name for name, _ in model.named_children()] if isinstance(model, Sequential) else []
        if self.head not in names or any(True for c in model[names.index(self.head) + 1:].parameters()):
            return super().inner_inputs(batch)
        i = names.index(self.head)
        body = model[:i]
        return model[i:], task_call(body, {}, batch.support_x), task_call(body, {}, batch.query_x)


def _head(model: Module, head: str | None) -> str:
    """The dotted name of the head: ``head`` once checked to name a submodule with trainable parameters, or
    by default the model's last child that has some."""
    held = [name for name, m in model.named_modules() if name and any(p.requires_grad for p in m.parameters())]
    if head is None:
        children = [name for name, _ in model.named_children() if name in held]
        if not children:
            raise ValueError(f"ANIL: {type(model).__name__} has no child module with parameters to use as the "
                             "head; pass head= the dotted name of one")
        return children[-1]
    if not isinstance(head, str) or head not in held:
        raise ValueError(f"ANIL: head={head!r} names no submodule of the model with trainable parameters "
                         f"(those are {held})")
    return head
