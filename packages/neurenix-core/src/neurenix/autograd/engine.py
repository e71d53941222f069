"""The backward pass: walk the graph from the outputs in reverse creation order, calling each vjp."""

from __future__ import annotations

from collections.abc import Sequence

from . import grad_mode, hooks
from .graph import Node, check_saved, output

_RELEASED = ("the graph was already freed by an earlier backward pass; pass retain_graph=True to the first "
             "backward() or autograd.grad() call if you need to go through it again")


def _as_tuple(x) -> tuple:
    """None, a tensor, or any iterable of them (a list, ``model.parameters()``, a dict's values) as a tuple."""
    if x is None:
        return ()
    if isinstance(x, (list, tuple)):
        return tuple(x)
    if hasattr(x, "_node") or not hasattr(x, "__iter__"):  # a tensor (iterable too), or not a sequence
        return (x,)
    return tuple(x)


def _is_tensor(x) -> bool:
    return hasattr(x, "_node") and hasattr(x, "_data")  # (duck-typed: this package is below tensor.py)


def _seeds(outputs: tuple, grad_outputs: tuple) -> list:
    if grad_outputs and len(grad_outputs) != len(outputs):
        raise ValueError(f"got {len(outputs)} outputs but {len(grad_outputs)} grad_outputs")
    seeds = []
    for i, out in enumerate(outputs):
        if not _is_tensor(out):
            raise TypeError(f"output {i} is a {type(out).__name__}, not a Tensor")
        if not out.requires_grad:
            raise RuntimeError(f"output {i} (shape {out.shape}) does not require grad: it was not computed from "
                               "tensors with requires_grad=True, or was computed under no_grad()")
        g = grad_outputs[i] if grad_outputs else None
        if g is None:
            if out.numel() != 1:
                raise RuntimeError(f"output {i} has shape {out.shape}: a gradient can be created implicitly only for "
                                   "a single-element output; pass grad_outputs (or gradient=) of the same shape")
            g = out.new_ones(out.shape)
        elif not _is_tensor(g):
            g = out.new_tensor(g)
        elif g.shape != out.shape:
            raise RuntimeError(f"grad_outputs[{i}] has shape {g.shape} but output {i} has shape {out.shape}")
        seeds.append((out, g))
    return seeds


def _slot(t):
    """Where the gradient of tensor ``t`` collects: its node, or the tensor itself for a leaf."""
    return t if t._node is None else t._node


def _topo_order(roots: list, inputs: set, min_seq: int) -> list:
    """The nodes whose vjp must run, outputs first.

    A node is created after everything it depends on, so sorting by creation number is a topological
    order. History created no later than every non-leaf input (``seq <= min_seq``) is not walked. With
    ``inputs`` (ids of slots), only nodes that lead to one of them are kept: the graph behind an input,
    or beside the inputs, is neither run nor freed.
    """
    found = {}
    stack = [r for r in roots if type(r) is Node and r.seq > min_seq]
    while stack:
        n = stack.pop()
        if id(n) in found:
            continue
        found[id(n)] = n
        for p in n.parents:
            if type(p) is Node and p.seq > min_seq and id(p) not in found:
                stack.append(p)
    order = sorted(found.values(), key=_by_seq)
    if inputs:
        leads = set(inputs)  # ids of inputs and of nodes with one among their ancestors (parents come first)
        kept = []
        for n in order:
            for p in n.parents:
                if id(p) in leads:  # id(None) is never an input's
                    leads.add(id(n))
                    kept.append(n)
                    break
        order = kept
    order.reverse()
    return order


def _by_seq(n: Node) -> int:
    return n.seq


def _run(seeds: list, inputs: tuple, retain_graph: bool, create_graph: bool) -> dict:
    """Propagate gradients from ``seeds``; return {id(slot): (slot, grad)} for the inputs' slots, or for all
    leaves (slot: a node, or a leaf tensor; see ``_slot``), each through its tensor's hooks."""
    slots = [_slot(t) for t in inputs]
    nodes = [s for s in slots if type(s) is Node]
    min_seq = min(n.seq for n in nodes) if inputs and len(nodes) == len(slots) else -1
    keep = {id(s) for s in slots}
    grads: dict = {}
    for out, g in seeds:
        slot = _slot(out)
        prev = grads.get(id(slot))
        grads[id(slot)] = (slot, g if prev is None else prev[1] + g)
    order = _topo_order([_slot(out) for out, _ in seeds], keep, min_seq)
    done: set = set()  # nodes whose hooks ran
    prev_mode, grad_mode.state.enabled = grad_mode.state.enabled, create_graph
    try:
        for node in order:
            entry = grads.get(id(node)) if id(node) in keep else grads.pop(id(node), None)
            if entry is None:
                continue
            if node._hooks:  # the node's gradient is whole now: its tensor's hooks see it, then its vjp
                entry = (node, hooks.run(node._hooks, entry[1]))
                if id(node) in keep:
                    grads[id(node)] = entry
                done.add(id(node))
            if node.vjp is None:
                raise RuntimeError(f"cannot backpropagate through {node.name}: {_RELEASED}")
            for t in node.saved:  # (inlined: it runs for every node)
                if t._version > node.seq:
                    check_saved(node)  # raises, naming what changed
            for p, pg in zip(node.parents, node.vjp(entry[1], output(node))):
                if pg is None or p is None:
                    continue
                prev = grads.get(id(p))
                grads[id(p)] = (p, pg if prev is None else prev[1] + pg)
            if not retain_graph:
                node.release()
        for key, (slot, g) in list(grads.items()) if hooks.used else ():  # leaves, inputs whose nodes did not run
            if getattr(slot, "_hooks", None) and key not in done:  # (a tensor's slot is unset until a hook)
                grads[key] = (slot, hooks.run(slot._hooks, g))
    finally:
        grad_mode.state.enabled = prev_mode
    return grads


def grad(outputs, inputs, grad_outputs=None, create_graph: bool = False, retain_graph: bool | None = None,
         allow_unused: bool = False) -> tuple:
    """Gradients of ``outputs`` with respect to ``inputs``, returned (not accumulated into ``.grad``, but for
    tensors that ``retain_grad()``, as in PyTorch).

    ``grad_outputs`` weights each output (required for outputs with more than one element). With
    ``create_graph=True`` the result is itself differentiable, for gradients of higher order.
    """
    outputs, inputs = _as_tuple(outputs), _as_tuple(inputs)
    for i, t in enumerate(inputs):
        if not getattr(t, "requires_grad", False):
            raise RuntimeError(f"input {i} (shape {getattr(t, 'shape', None)}) does not require grad")
    seeds = _seeds(outputs, _as_tuple(grad_outputs))
    retain = create_graph if retain_graph is None else retain_graph
    grads = _run(seeds, inputs, retain, create_graph)
    result = []
    for i, t in enumerate(inputs):
        entry = grads.get(id(_slot(t)))
        if entry is None and not allow_unused:
            raise RuntimeError(f"input {i} (shape {t.shape}) is not used in computing the outputs, so it has no "
                               "gradient; pass allow_unused=True to get None for it")
        result.append(None if entry is None else entry[1])
    return tuple(result)


def backward(tensors, grad_tensors=None, retain_graph: bool | None = None, create_graph: bool = False,
             inputs: Sequence | None = None) -> None:
    """Accumulate the gradients of ``tensors`` into the ``.grad`` of the leaves (or of ``inputs``)."""
    seeds = _seeds(_as_tuple(tensors), _as_tuple(grad_tensors))
    retain = create_graph if retain_graph is None else retain_graph
    inputs = _as_tuple(inputs)
    for i, t in enumerate(inputs):
        if not getattr(t, "requires_grad", False) or not hasattr(t, "_node"):
            raise RuntimeError(f"backward: inputs[{i}] ({type(t).__name__}) is not a tensor that requires grad")
    grads = _run(seeds, inputs, retain, create_graph)
    targets = inputs or [s for s, _ in grads.values() if type(s) is not Node]
    for t in targets:
        entry = grads.get(id(_slot(t)))
        if entry is not None:
            g = entry[1]
            t.grad = g if t.grad is None else t.grad + g
