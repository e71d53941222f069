"""export's arguments, training mode, the graph's names, unsupported modules and rules of one's own."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

if not os.environ.get("NEURENIX_REQUIRE_ONNX"):
    pytest.importorskip("onnx", reason="onnx is not installed (pip install 'neurenix-core[onnx]')")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")

import onnx

import neurenix as nx
from neurenix import nn
from neurenix import onnx as nxo


def _mlp():
    nx.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 3))


def test_a_model_in_training_mode_exports_its_inference_graph_with_a_warning(roundtrip):
    model = _mlp()
    x = nx.randn(5, 4)
    model(x)  # moves the running statistics away from their initial values
    state = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    with pytest.warns(UserWarning, match="Sequential is in training mode; .* inference semantics"):
        proto = nxo.export(model, x, io.BytesIO())
    assert all(m.training for m in model.modules())  # modes put back
    assert all(np.array_equal(v.numpy(), state[k]) for k, v in model.state_dict().items())  # statistics untouched
    assert "Dropout" not in {n.op_type for n in proto.graph.node}
    roundtrip(model.eval(), x)  # the same graph as in eval mode


def test_modes_are_put_back_one_by_one():
    model = _mlp().eval()
    model[1].train()
    with pytest.warns(UserWarning, match="training mode"):
        nxo.export(model, nx.randn(2, 4), io.BytesIO())
    assert [m.training for m in model.modules()] == [False, False, True, False, False, False]


def test_names_of_the_input_and_the_output(tmp_path):
    path = tmp_path / "mlp.onnx"
    proto = nxo.export(_mlp().eval(), nx.randn(2, 4), path, input_names=["features"], output_names=["logits"],
                       dynamic_axes={"features": [0], "logits": {0: "n"}})
    loaded = onnx.load(path)
    assert loaded == proto
    assert [i.name for i in loaded.graph.input] == ["features"] and [o.name for o in loaded.graph.output] == ["logits"]
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in (*loaded.graph.input,
                                                                                         *loaded.graph.output)]
    assert dims == [["features_dynamic_axes_1", 4], ["n", 3]]
    assert loaded.producer_name == "neurenix" and loaded.opset_import[0].version == 17


def test_an_output_name_taken_by_a_module_path_stays_unique(roundtrip):
    # the first Linear's output would be named "0", the output's name
    proto = roundtrip(_mlp().eval(), nx.randn(2, 4), output_names=["0"])
    outputs = [o for n in proto.graph.node for o in n.output]
    assert outputs.count("0") == 1 and outputs[-1] == "0"


@pytest.mark.parametrize("model", [nn.Identity(), nn.Sequential(nn.Dropout(), nn.Identity()), nn.Sequential()],
                         ids=["Identity", "Dropout-Identity", "empty-Sequential"])
def test_a_model_that_returns_its_input(model, roundtrip):
    proto = roundtrip(model.eval(), nx.randn(2, 3), nx.randn(4, 3), dynamic_axes={"input": [0], "output": [0]})
    assert [n.op_type for n in proto.graph.node] == ["Identity"]


def test_example_input_as_a_tuple_of_one():
    """torch.onnx.export's ``args``: a tuple of the model's one input."""
    x = nx.randn(2, 4)
    proto = nxo.export(_mlp().eval(), (x,), io.BytesIO())
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [2, 4]


class Scale(nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


class SlowReLU(nn.ReLU):
    def forward(self, x):  # a subclass that computes something else
        return super().forward(x) * 2


class NamedReLU(nn.ReLU):
    pass


def test_unsupported_module_is_named_with_its_path_and_class():
    model = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.ReLU(), Scale(2.0)))
    with pytest.raises(nxo.UnsupportedModuleError, match=r"module '1\.1' is a .*test_onnx_export\.Scale, which has "
                       r"no ONNX export rule .* Supported: AdaptiveAvgPool2d, AvgPool1d, .*Linear.*, Tanh, "
                       r"TransformerEncoder, TransformerEncoderClassifier, TransformerEncoderLayer, WideBasicBlock, "
                       r"WideGroup, WideResNet$"):
        nxo.export(model.eval(), nx.randn(2, 4), io.BytesIO())
    with pytest.raises(nxo.UnsupportedModuleError, match="the model is a .*Scale"):
        nxo.export(Scale(2.0).eval(), nx.randn(2, 4), io.BytesIO())


def test_a_module_list_is_pointed_to_sequential():
    with pytest.raises(nxo.UnsupportedModuleError, match="'0' is a neurenix.nn.container.ModuleList.*Sequential"):
        nxo.export(nn.Sequential(nn.ModuleList([nn.ReLU()])).eval(), nx.randn(2, 4), io.BytesIO())


class Heads(nn.Module):
    """A model of its own over a ModuleDict."""

    def __init__(self):
        super().__init__()
        self.heads = nn.ModuleDict({"a": nn.Linear(4, 2)})

    def forward(self, x):
        return self.heads["a"](x)


def test_a_module_dict_is_pointed_to_sequential():
    with pytest.raises(nxo.UnsupportedModuleError, match=r"'0' is a neurenix\.nn\.container\.ModuleDict, .*a "
                       r"ModuleDict has no forward of its own: put its layers in a Sequential"):
        nxo.export(nn.Sequential(Heads().heads).eval(), nx.randn(2, 4), io.BytesIO())
    with pytest.raises(nxo.UnsupportedModuleError, match="the model is a .*Heads"):
        nxo.export(Heads().eval(), nx.randn(2, 4), io.BytesIO())


def test_multihead_attention_alone_is_pointed_to_the_encoder_layer():
    with pytest.raises(nxo.UnsupportedModuleError, match="'0' is a .*MultiheadAttention, .*its forward takes query, "
                       "key and value: it exports as the self-attention of a TransformerEncoderLayer"):
        nxo.export(nn.Sequential(nn.MultiheadAttention(4, 2)).eval(), nx.randn(3, 2, 4), io.BytesIO())


def _encoder_layer(**attention):
    layer = nn.TransformerEncoderLayer(4, 2, 8)
    if attention:
        layer.self_attn = nn.MultiheadAttention(4, 2, **attention)
    return layer


@pytest.mark.parametrize(("layer", "match"), [
    (_encoder_layer(add_bias_kv=True), r"module '1\.self_attn' is a .*MultiheadAttention with add_bias_kv=True, "
                                       "which has no ONNX export rule"),
    (_encoder_layer(add_zero_attn=True), r"'1\.self_attn' is a .*MultiheadAttention with add_zero_attn=True"),
    (nn.TransformerEncoderLayer(4, 2, 8, activation=lambda x: x * 2),
     r"module '1' is a .*TransformerEncoderLayer with activation=<function .*<lambda>.*> \(a function: the exporter "
     r"reads modules, so give 'relu', 'gelu' or a module of a supported class\)"),
], ids=["add_bias_kv", "add_zero_attn", "activation-function"])
def test_an_option_without_a_rule_is_named(layer, match):
    model = nn.Sequential(nn.Identity(), layer).eval()
    x = nx.randn(3, 2, 4)
    model(x)  # neurenix computes it
    with pytest.raises(nxo.UnsupportedModuleError, match=match):
        nxo.export(model, x, io.BytesIO())


def test_subclasses_keep_their_base_rule_only_with_its_forward(roundtrip):
    roundtrip(nn.Sequential(NamedReLU()).eval(), nx.randn(2, 4))
    with pytest.raises(nxo.UnsupportedModuleError, match="SlowReLU"):
        nxo.export(nn.Sequential(SlowReLU()).eval(), nx.randn(2, 4), io.BytesIO())


def test_a_registered_rule_exports_a_layer_of_ones_own(monkeypatch, roundtrip):
    from neurenix.onnx import rules

    monkeypatch.setattr(rules, "_RULES", dict(rules._RULES))  # registered for this test only

    @nxo.register(Scale)
    def scale(g, m, x, path):
        return g.node("Mul", [x.name, g.scalar(m.factor, f"{path}.factor")], path)

    assert "Scale" in nxo.supported()
    roundtrip(nn.Sequential(nn.Linear(4, 4), Scale(3.0)).eval(), nx.randn(2, 4))


@pytest.mark.parametrize(("options", "error", "match"), [
    ({"opset_version": 12}, ValueError, "opset_version must be an int from 13"),
    ({"opset_version": 99}, ValueError, "opset_version must be an int from 13"),
    ({"input_names": ["a", "b"]}, ValueError, "input_names must be a list of one name"),
    ({"output_names": "y"}, ValueError, "output_names must be a list of one name"),
    ({"dynamic_axes": {"x": [0]}}, ValueError, "dynamic_axes names 'x', which is neither the input 'input'"),
    ({"dynamic_axes": {"input": [2]}}, ValueError, "dynamic axis 2 of 'input' is out of range"),
    ({"dynamic_axes": {"input": 0}}, TypeError, r"dynamic_axes\['input'\] must be a list of axes"),
    ({"dynamic_axes": [0]}, TypeError, "dynamic_axes must be a dict"),
    ({"input_names": ["x"], "output_names": ["x"]}, ValueError, "both named 'x'"),
])
def test_bad_arguments_say_what_is_wrong(options, error, match):
    with pytest.raises(error, match=match):
        nxo.export(_mlp().eval(), nx.randn(2, 4), io.BytesIO(), **options)


def test_bad_model_or_input():
    with pytest.raises(TypeError, match="example_input must be a Tensor, got ndarray"):
        nxo.export(_mlp().eval(), np.zeros((2, 4), np.float32), io.BytesIO())
    with pytest.raises(TypeError, match=r"example_input is neurenix\.bool; float32 and float64 models export, and "
                       "int64 indices into an Embedding"):
        nxo.export(_mlp().eval(), nx.zeros(2, 4, dtype=nx.bool), io.BytesIO())
    with pytest.raises(TypeError, match="the int64 input feeds Gemm node '0/Gemm': an int64 input exports as the "
                       "indices of an Embedding only"):
        nxo.export(_mlp().eval(), nx.zeros(2, 4, dtype=nx.int64), io.BytesIO())  # which neurenix takes, as floats
    with pytest.raises(TypeError, match="model must be a neurenix.nn.Module, got function"):
        nxo.export(lambda x: x, nx.randn(2, 4), io.BytesIO())
    with pytest.raises(ValueError, match="is an Embedding with max_norm=1.0, which rescales rows"):
        nxo.export(nn.Embedding(10, 4, max_norm=1.0).eval(), nx.tensor([[1, 2]]), io.BytesIO())


def test_a_layer_at_the_root_names_its_weights_as_its_state_dict_does():
    model = nn.BatchNorm1d(3).eval()
    proto = nxo.export(model, nx.randn(2, 3), io.BytesIO())
    assert {i.name for i in proto.graph.initializer} == {"weight", "bias", "running_mean", "running_var"}
