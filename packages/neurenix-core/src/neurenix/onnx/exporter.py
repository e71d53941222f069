"""``export``: a model's inference graph as an ONNX file, with torch.onnx.export's arguments."""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from typing import IO

import numpy as np
import onnx
from onnx import helper

from .. import __version__
from ..autograd import no_grad
from ..nn import Module
from ..tensor import Tensor
from .graph import Graph, Value

DEFAULT_OPSET = 17
MIN_OPSET = 13  # Softmax over one axis, and axes as inputs of Squeeze, Unsqueeze and ReduceSum
_READ_INDICES = {"Shape", "Equal"}  # ops that read an int64 input without computing floats from it
_DTYPES = {np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64)}


def export(model: Module, example_input: Tensor, path: str | os.PathLike | IO[bytes], *,
           opset_version: int = DEFAULT_OPSET, input_names: list[str] | None = None,
           output_names: list[str] | None = None, dynamic_axes: dict | None = None) -> onnx.ModelProto:
    """Write ``model``'s inference graph for inputs like ``example_input`` (float32 or float64, or int64 indices
    for a model that starts with an Embedding) to ``path`` (a file name or a binary file), checked with
    ``onnx.checker``; returns the ``onnx.ModelProto``.

    The graph is built from the model's modules (see ``neurenix.onnx.supported()``), with their weights as
    initializers. It has inference semantics, as PyTorch's default ``training=TrainingMode.EVAL``: BatchNorm
    normalises with its running statistics and Dropout is the identity; a model in training mode is exported so,
    with a warning. ``input_names`` and ``output_names`` name the graph's one input and one output ("input",
    "output" by default); ``dynamic_axes`` maps either name to the axes that may change size, as a list of axes
    or a dict ``{axis: name}`` (``{"input": {0: "batch"}, "output": {0: "batch"}}``).
    """
    x = _example(example_input)
    opset = _opset(opset_version)
    names = (_one_name(input_names, "input_names", "input"), _one_name(output_names, "output_names", "output"))
    if names[0] == names[1]:
        raise ValueError(f"neurenix.onnx.export: the input and the output are both named {names[0]!r}")
    axes = _dynamic_axes(dynamic_axes, names)
    with _inference(model), no_grad():
        g = Graph(_float_dtype(model, x), opset, reserved=names)
        y = g.module(model, Value(names[0], x), "")
    if not isinstance(y.example, Tensor):
        raise TypeError(f"neurenix.onnx.export: the model returns a {type(y.example).__name__}, not one Tensor")
    if x.dtype.np.kind == "i":
        _only_indices(g, names[0])
    _name_output(g, y.name, names)
    proto = _model(g, (_info(names[0], x, axes), _info(names[1], y.example, axes)))
    onnx.checker.check_model(proto, full_check=True)
    onnx.save_model(proto, path)
    return proto


def _example(example_input) -> Tensor:
    if isinstance(example_input, tuple) and len(example_input) == 1:  # torch's ``args`` tuple of one input
        example_input = example_input[0]
    if not isinstance(example_input, Tensor):
        raise TypeError(f"neurenix.onnx.export: example_input must be a Tensor, got {type(example_input).__name__}")
    if example_input.dtype.np not in _DTYPES:
        raise TypeError(f"neurenix.onnx.export: example_input is {example_input.dtype}; float32 and float64 models "
                        "export, and int64 indices into an Embedding")
    return example_input.detach()


def _float_dtype(model: Module, x: Tensor) -> np.dtype:
    """The dtype of the graph's float values: the input's, or where it holds indices, the model's parameters'."""
    if x.dtype.np.kind == "f":
        return x.dtype.np
    return next((p.dtype.np for p in model.parameters() if p.dtype.np.kind == "f"), np.dtype(np.float32))


def _only_indices(g: Graph, name: str) -> None:
    """An int64 input exports only as Embeddings' indices (Gather's): a float op that neurenix runs on it by
    promotion would fail the checker with an error that names no layer. A rule may read the indices' shape or
    compare them (``Shape``, ``Equal``: TransformerEncoderClassifier's positions and padding mask)."""
    for node in g.nodes:
        if name in node.input and node.op_type not in _READ_INDICES and (
                node.op_type != "Gather" or list(node.input).index(name) != 1):
            raise TypeError(f"neurenix.onnx.export: the int64 input feeds {node.op_type} node {node.name!r}: an int64 "
                            "input exports as the indices of an Embedding only (pass a float input to other layers)")


def _opset(version) -> int:
    newest = onnx.defs.onnx_opset_version()
    if not isinstance(version, int) or isinstance(version, bool) or not MIN_OPSET <= version <= newest:
        raise ValueError(f"neurenix.onnx.export: opset_version must be an int from {MIN_OPSET} to {newest} (this "
                         f"onnx's newest), got {version!r}")
    return version


def _one_name(names, argument: str, default: str) -> str:
    if names is None:
        return default
    if not isinstance(names, (list, tuple)) or len(names) != 1 or not isinstance(names[0], str) or not names[0]:
        raise ValueError(f"neurenix.onnx.export: {argument} must be a list of one name (the graph has one), got "
                         f"{names!r}")
    return names[0]


def _dynamic_axes(dynamic_axes, names: tuple[str, str]) -> dict[str, dict[int, str]]:
    """``{name: {axis: dim name}}`` from torch's forms: a list of axes (named ``<name>_dynamic_axes_<i>``) or a
    dict of axis to name."""
    if dynamic_axes is None:
        return {}
    if not isinstance(dynamic_axes, dict):
        raise TypeError(f"neurenix.onnx.export: dynamic_axes must be a dict, got {type(dynamic_axes).__name__}")
    out = {}
    for name, axes in dynamic_axes.items():
        if name not in names:
            raise ValueError(f"neurenix.onnx.export: dynamic_axes names {name!r}, which is neither the input "
                             f"{names[0]!r} nor the output {names[1]!r}")
        if isinstance(axes, (list, tuple)):
            axes = {a: f"{name}_dynamic_axes_{i + 1}" for i, a in enumerate(axes)}
        if not isinstance(axes, dict) or not all(isinstance(a, int) and isinstance(d, str) for a, d in axes.items()):
            raise TypeError(f"neurenix.onnx.export: dynamic_axes[{name!r}] must be a list of axes or a dict of axis "
                            f"to name, got {axes!r}")
        out[name] = axes
    return out


def _info(name: str, t: Tensor, dynamic: dict[str, dict[int, str]]) -> onnx.ValueInfoProto:
    """The graph input or output ``name``: ``t``'s dtype and shape, with the dynamic axes named."""
    axes = {}
    for a, dim in dynamic.get(name, {}).items():
        if not -t.ndim <= a < t.ndim:
            raise ValueError(f"neurenix.onnx.export: dynamic axis {a} of {name!r} is out of range for its "
                             f"{t.ndim} dimensions (shape {tuple(t.shape)})")
        axes[a % t.ndim] = dim
    shape = [axes.get(i, n) for i, n in enumerate(t.shape)]
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(t.dtype.np), shape)


def _name_output(g: Graph, last: str, names: tuple[str, str]) -> None:
    """Give the model's last value the output's name: the node that computes it is renamed; the input (a model
    of identities) is passed through an Identity node."""
    if last == names[0] or last in {i.name for i in g.initializers}:
        g.nodes.append(helper.make_node("Identity", [last], [names[1]], name=f"{names[1]}/Identity"))
        return
    for node in g.nodes:
        for field in (node.input, node.output):
            for i, v in enumerate(field):
                if v == last:
                    field[i] = names[1]


def _model(g: Graph, io: tuple) -> onnx.ModelProto:
    graph = helper.make_graph(g.nodes, "neurenix", [io[0]], [io[1]], g.initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", g.opset)], producer_name="neurenix",
                             producer_version=__version__)


@contextmanager
def _inference(model: Module):
    """``model`` in eval mode for the block (with a warning where it was training), each module's mode put back
    after."""
    if not isinstance(model, Module):
        raise TypeError(f"neurenix.onnx.export: model must be a neurenix.nn.Module, got {type(model).__name__}")
    modes = [(m, m.training) for m in model.modules()]
    if any(t for _, t in modes):
        warnings.warn(f"neurenix.onnx.export: {type(model).__name__} is in training mode; its graph is exported with "
                      "inference semantics, as after model.eval() (BatchNorm normalises with its running statistics, "
                      "Dropout is the identity). Call model.eval() first to silence this warning", UserWarning,
                      stacklevel=4)
    model.eval()
    try:
        yield
    finally:
        for m, t in modes:
            m.__dict__["training"] = t
