"""The recorded graph: each result of a differentiable op points to a Node.

A node holds its inputs' places in the graph (``parents``: the Node of each input computed by an op, the
input itself for a leaf, None for an input that needs no gradient) and the op's vector-Jacobian product
``vjp(grad, out)``, which returns one gradient per input. Every vjp is written with differentiable Tensor
ops, so running it while recording gives gradients of any order.

Edges go to nodes, not to tensors, so the graph keeps alive only what the vjps saved: an intermediate
value nobody needs for the backward pass (a conv's output before its bias, a ReLU's output before
max-pooling) is freed as soon as the program drops it. A vjp that needs the op's output gets it as an
argument: the node keeps a weak reference to the output tensor and, for ops that ask (``needs_output``),
its buffer, from which ``output`` rebuilds the tensor if the program has dropped it (holding the tensor
itself would make a reference cycle, freed only by the garbage collector).
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable

_seq = itertools.count()


class Node:
    """How a tensor was computed: op name, parents, vjp, output, and a creation sequence number.

    ``seq`` orders nodes by creation: a tensor can only depend on tensors created before it, which
    lets ``autograd.grad`` skip history older than all of its inputs.
    """

    __slots__ = ("name", "output", "parents", "seq", "vjp")

    def __init__(self, name: str, parents: tuple, vjp: Callable, output: Callable):
        self.name = name
        self.parents = parents
        self.vjp = vjp
        self.output = output  # a weak reference to the output, or (weak reference, buffer, device)
        self.seq = next(_seq)

    def release(self) -> None:
        """Free what the backward pass needed (saved tensors live in the vjp's closure)."""
        self.vjp = self.output = None
        self.parents = ()

    def __repr__(self) -> str:
        return f"<{self.name}Backward>"


def record(out, name: str, parents: tuple, vjp: Callable, needs_output: bool = False) -> None:
    """Mark ``out`` as computed by op ``name`` from ``parents``, differentiable through ``vjp``. An op whose
    vjp reads its output (exp, softmax, ...) passes ``needs_output`` so that the node keeps its buffer."""
    out.requires_grad = True
    ref = weakref.ref(out)
    # where each input's gradient goes: its node, itself if a leaf that requires grad, or nowhere (None)
    edges = tuple([p._node if p._node is not None else p if p.requires_grad else None for p in parents])
    out._node = Node(name, edges, vjp, (ref, out._data, out._device) if needs_output else ref)


def output(node: Node):
    """The output tensor of ``node`` for its vjp: the live one, or one rebuilt on the kept buffer (same node,
    so gradients of higher order still flow through it); None if it is gone and the vjp does not read it."""
    if type(node.output) is not tuple:
        return node.output()
    ref, data, device = node.output
    out = ref()
    if out is None:
        from ..tensor import _wrap
        out = _wrap(data, device)
        out.requires_grad, out._node = True, node
    return out
