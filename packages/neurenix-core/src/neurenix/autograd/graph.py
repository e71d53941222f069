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

In-place changes: a tensor changed in place (``add_``, ``x[i] = v``, an optimizer step) gets a new buffer,
and its ``_version`` becomes the sequence number of the change. A node keeps the tensors its vjp reads
(``saved``); the backward pass refuses to run a vjp whose saved tensor changed after the node was made,
since it would compute with the new value (``check_saved``). An output a vjp reads is rebuilt from the
node's kept buffer when the live tensor was changed, so that case gives the right gradient.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable

from ..caches import remember
from ..errors import InPlaceError

_seq = itertools.count()


class Node:
    """How a tensor was computed: op name, parents, vjp, output, and a creation sequence number.

    ``seq`` orders nodes by creation: a tensor can only depend on tensors created before it, which
    lets ``autograd.grad`` skip history older than all of its inputs.
    """

    __slots__ = ("_hooks", "name", "output", "parents", "saved", "seq", "vjp")

    def __init__(self, name: str, parents: tuple, vjp: Callable, output: Callable, saved: tuple):
        self.name = name
        self.parents = parents
        self.vjp = vjp
        self.output = output  # a weak reference to the output, or (weak reference, buffer, device)
        self.saved = saved  # the tensors vjp reads (it holds them anyway): checked for in-place changes
        self.seq = next(_seq)
        self._hooks = None  # the output tensor's hooks (autograd.hooks), rarely any

    def release(self) -> None:
        """Free what the backward pass needed (saved tensors live in the vjp's closure)."""
        self.vjp = self.output = None
        self.parents = self.saved = ()

    def __repr__(self) -> str:
        return f"<{self.name}Backward>"


def record(out, name: str, parents: tuple, vjp: Callable, needs_output: bool = False, saved: tuple | None = None):
    """Mark ``out`` as computed by op ``name`` from ``parents``, differentiable through ``vjp``. An op whose
    vjp reads its output (exp, softmax, ...) passes ``needs_output`` so that the node keeps its buffer.
    ``saved`` names the tensors whose values vjp reads (default: all parents; ``()`` for none)."""
    out.requires_grad = True
    ref = weakref.ref(out)
    # where each input's gradient goes: its node, itself if a leaf that requires grad, or nowhere (None)
    edges = tuple([p._node if p._node is not None else p if p.requires_grad else None for p in parents])
    out._node = Node(name, edges, vjp, (ref, out._data, out._device) if needs_output else ref,
                     parents if saved is None else saved)


_changes: dict = {}  # sequence number of an in-place change -> what made it (for the error message)


def changed(op: str) -> int:
    """A new sequence number for an in-place change made by ``op``: the changed tensor's ``_version``."""
    seq = next(_seq)
    remember(_changes, seq, op)  # (only recent changes can be named; an older one reads "an in-place operation")
    return seq


def check_saved(node: Node) -> None:
    """Refuse to run ``node``'s vjp if a tensor it saved was changed in place after the node was made."""
    for t in node.saved:
        if t._version > node.seq:
            by = _changes.get(t._version, "an in-place operation")
            raise InPlaceError(
                f"a tensor of shape {t.shape} ({t.dtype}) that {node.name} saved for the backward pass was changed "
                f"by {by} after it was saved, so its gradient would be computed from the new values. Make the "
                "change after backward (or autograd.grad), or change a clone() of the tensor instead")


#: how to make a tensor around a buffer: ``(buffer, device) -> Tensor``; tensor.py sets it (this module
#: knows nothing of Tensor, so that dependencies point one way)
make_tensor: Callable = None


def output(node: Node):
    """The output tensor of ``node`` for its vjp: the live one, or one rebuilt on the kept buffer (same node,
    so gradients of higher order still flow through it); None if it is gone and the vjp does not read it."""
    if type(node.output) is not tuple:
        return node.output()
    ref, data, device = node.output
    out = ref()
    if out is None or out._version > node.seq:  # dropped, or changed in place since: the kept value is right
        out = make_tensor(data, device)
        out.requires_grad, out._node = True, node
    return out
