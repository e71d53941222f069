"""ANIL (Raghu et al., 2020): MAML that adapts only the head in the inner loop ("almost no inner loop")."""

from __future__ import annotations

from neurenix.nn import Module

from .maml import MAML


class ANIL(MAML):
    """ANIL: the inner loop adapts only ``head`` (the dotted name of a submodule; by default the model's
    last child that holds parameters, such as the final Linear of a Sequential); the body is shared by
    all tasks and learned by the outer loop alone, through the adapted heads' query losses. Everything
    else (second or first order, and MAML's keyword options) is as in ``MAML``.
    """

    def __init__(self, model: Module, inner_lr: float = 0.01, meta_lr: float = 0.001, first_order: bool = False,
                 inner_steps: int = 5, *, head: str | None = None, **options):
        if "inner_params" in options:
            raise TypeError("ANIL chooses the adapted parameters with head=, not inner_params=")
        if head is None:
            held = [name for name, child in model.named_children() if any(True for _ in child.parameters())]
            if not held:
                raise ValueError(f"ANIL: {type(model).__name__} has no child module with parameters to use as the "
                                 "head; pass head= the dotted name of one")
            head = held[-1]
        super().__init__(model, inner_lr, meta_lr, first_order, inner_steps, inner_params=[head], **options)
        self.head = head
