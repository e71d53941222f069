"""The graph under construction: nodes, initializers and unique names, and the walk into submodules.

A value of the graph is a ``Value``: its name in the graph and what neurenix computes there for the example
input. Rules read shapes off the example (the rank decides between Gemm and MatMul, say), never its values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import NodeProto, TensorProto, helper, numpy_helper

from ..nn import Module
from ..tensor import Tensor
from .rules import rule_for


@dataclass(frozen=True, eq=False)
class Value:
    """A value of the graph: its ``name`` and neurenix's ``example`` of it (for the example input)."""

    name: str
    example: Tensor

    @property
    def shape(self) -> tuple:
        return tuple(self.example.shape)

    @property
    def ndim(self) -> int:
        return self.example.ndim


class Graph:
    """An ONNX graph being built: rules add nodes (``node``) and constants (``constant``, ``tensor``) to it, and
    call ``module`` for the submodules they run."""

    def __init__(self, dtype: np.dtype, opset: int, reserved: tuple[str, ...] = ()):
        self.dtype, self.opset = np.dtype(dtype), opset
        self.nodes: list[NodeProto] = []
        self.initializers: list[TensorProto] = []
        self._taken = set(reserved)  # the graph's input and output names are not handed out

    def unique(self, base: str) -> str:
        """``base``, or ``base_1``, ``base_2``... where it is taken. Rules name things ``f"{path}.weight"``: at the
        model's root (path "") that is plain ``weight``."""
        base = base.removeprefix(".")
        name, i = base, 0
        while name in self._taken:
            i += 1
            name = f"{base}_{i}"
        self._taken.add(name)
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes) -> str:
        """Add an ``op`` node of one output, named after ``output`` (made unique); returns that name."""
        name = self.unique(output or op)
        self.nodes.append(helper.make_node(op, inputs, [name], name=f"{name}/{op}", **attributes))
        return name

    def constant(self, array, name: str) -> str:
        """An initializer of ``array``; floating-point arrays take the graph's dtype (the input's)."""
        a = np.asarray(array)
        a = a.astype(self.dtype) if a.dtype.kind == "f" else a
        name = self.unique(name)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(a), name))
        return name

    def tensor(self, t: Tensor, name: str) -> str:
        """An initializer of a neurenix tensor's values (a parameter or buffer)."""
        return self.constant(np.array(t.detach().numpy()), name)

    def scalar(self, v: float, name: str) -> str:
        """A float scalar of the graph's dtype, for elementwise arithmetic."""
        return self.constant(np.array(v, self.dtype), name)

    def ints(self, values, name: str) -> str:
        """An int64 vector (shapes, axes, slice bounds)."""
        return self.constant(np.array(values, np.int64).reshape(-1), name)

    def reduce(self, op: str, x: str, axes: list[int], output: str, keepdims: bool = True) -> str:
        """A Reduce* node over ``axes``: an attribute up to opset 17, an input from 18 (ReduceSum: from 13)."""
        if self.opset >= 18 or op == "ReduceSum":
            return self.node(op, [x, self.ints(axes, f"{output}.axes")], output, keepdims=int(keepdims))
        return self.node(op, [x], output, axes=list(axes), keepdims=int(keepdims))

    def batched(self, op: str, x: Value, inputs: list[str], rank: int, path: str, **attributes) -> str:
        """An ``op`` that takes batches only (Conv, the pools) over ``x`` of ``rank`` axes, or of one axis fewer
        (an unbatched input, which neurenix takes) as a batch of one."""
        if x.ndim == rank:
            return self.node(op, [x.name, *inputs], path, **attributes)
        axis = self.ints([0], f"{path}.batch_axis")
        batch = self.node("Unsqueeze", [x.name, axis], f"{path}.batched")
        return self.node("Squeeze", [self.node(op, [batch, *inputs], f"{path}.unsqueezed", **attributes), axis], path)

    def module(self, m: Module, x: Value, path: str) -> Value:
        """The graph of ``m`` applied to ``x`` (``path``: m's name in the model, for names and errors)."""
        out = rule_for(m, path)(self, m, x, path)
        return out if isinstance(out, Value) else Value(out, m(x.example))
