"""The recorded graph: each result of a differentiable op points to a Node.

A node holds the op's inputs (``parents``) and its vector-Jacobian product ``vjp(grad, out)``,
which returns one gradient per parent (None where a parent needs none). Every vjp is written with
differentiable Tensor ops, so running it while recording gives gradients of any order. The vjp gets
the op's output as an argument instead of holding it, so outputs and nodes form no reference cycle.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

_seq = itertools.count()


class Node:
    """How a tensor was computed: op name, parents, vjp, and a creation sequence number.

    ``seq`` orders nodes by creation: a tensor can only depend on tensors created before it, which
    lets ``autograd.grad`` skip history older than all of its inputs.
    """

    __slots__ = ("name", "parents", "seq", "vjp")

    def __init__(self, name: str, parents: tuple, vjp: Callable):
        self.name = name
        self.parents = parents
        self.vjp = vjp
        self.seq = next(_seq)

    def release(self) -> None:
        """Free what the backward pass needed (saved tensors live in the vjp's closure)."""
        self.vjp = None
        self.parents = ()

    def __repr__(self) -> str:
        return f"<{self.name}Backward>"


def record(out, name: str, parents: tuple, vjp: Callable) -> None:
    """Mark ``out`` as computed by op ``name`` from ``parents``, differentiable through ``vjp``."""
    out.requires_grad = True
    out._node = Node(name, parents, vjp)
