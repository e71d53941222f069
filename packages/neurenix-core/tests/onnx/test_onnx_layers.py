"""Every layer with an export rule, and Conv-4 backbones, computed by ONNX Runtime as neurenix computes them,
for the example's batch size and another one (a dynamic batch axis)."""

from __future__ import annotations

import os

import numpy as np
import pytest

if not os.environ.get("NEURENIX_REQUIRE_ONNX"):
    pytest.importorskip("onnx", reason="onnx is not installed (pip install 'neurenix-core[onnx]')")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")

import onnx
from onnx.reference import ReferenceEvaluator

import neurenix as nx
from neurenix import nn
from neurenix import onnx as nxo

BATCH = {"input": {0: "batch"}, "output": {0: "batch"}}


class Indices(tuple):
    """The shape (without the batch axis) of an int64 input of indices below 10, an Embedding's."""


# (id, layer, shape of an input without its batch axis: float, or Indices)
LAYERS = [
    ("Linear", lambda: nn.Linear(6, 4), (6,)),
    ("Linear-no-bias", lambda: nn.Linear(6, 4, bias=False), (6,)),
    ("Linear-3d", lambda: nn.Linear(6, 4), (3, 6)),
    ("Linear-3d-no-bias", lambda: nn.Linear(6, 4, bias=False), (3, 6)),
    ("Conv2d", lambda: nn.Conv2d(3, 4, 3), (3, 9, 9)),
    ("Conv2d-stride-padding", lambda: nn.Conv2d(3, 4, (3, 5), stride=(2, 1), padding=(1, 2)), (3, 9, 8)),
    ("Conv2d-dilation", lambda: nn.Conv2d(3, 4, 3, dilation=2, padding=2), (3, 9, 9)),
    ("Conv2d-groups-no-bias", lambda: nn.Conv2d(4, 6, 3, groups=2, bias=False), (4, 7, 7)),
    ("Conv2d-depthwise", lambda: nn.Conv2d(4, 4, 3, groups=4, padding=1), (4, 7, 7)),
    ("BatchNorm1d", lambda: nn.BatchNorm1d(5), (5,)),
    ("BatchNorm1d-3d", lambda: nn.BatchNorm1d(5), (5, 4)),
    ("BatchNorm2d", lambda: nn.BatchNorm2d(3, eps=1e-3), (3, 5, 5)),
    ("BatchNorm2d-not-affine", lambda: nn.BatchNorm2d(3, affine=False), (3, 5, 5)),
    ("BatchNorm2d-batch-statistics", lambda: nn.BatchNorm2d(3, track_running_stats=False), (3, 5, 5)),
    ("BatchNorm1d-batch-statistics", lambda: nn.BatchNorm1d(5, track_running_stats=False), (5,)),
    ("ReLU", nn.ReLU, (3, 4)),
    ("LeakyReLU", lambda: nn.LeakyReLU(0.2), (3, 4)),
    ("Sigmoid", nn.Sigmoid, (3, 4)),
    ("Tanh", nn.Tanh, (3, 4)),
    ("GELU", nn.GELU, (3, 4)),
    ("GELU-tanh", lambda: nn.GELU(approximate="tanh"), (3, 4)),
    ("Softmax", lambda: nn.Softmax(dim=1), (5,)),
    ("Softmax-last-of-3d", lambda: nn.Softmax(dim=-1), (3, 4)),
    ("LogSoftmax", lambda: nn.LogSoftmax(dim=1), (3, 4)),
    ("MaxPool2d", lambda: nn.MaxPool2d(2), (3, 8, 8)),
    ("MaxPool2d-odd", lambda: nn.MaxPool2d(2), (3, 7, 9)),
    ("MaxPool2d-stride-padding", lambda: nn.MaxPool2d(3, stride=2, padding=1), (3, 8, 8)),
    ("MaxPool2d-dilation", lambda: nn.MaxPool2d(2, stride=1, dilation=2), (3, 8, 8)),
    ("AvgPool2d", lambda: nn.AvgPool2d(2), (3, 8, 8)),
    ("AvgPool2d-padding-counted", lambda: nn.AvgPool2d(3, stride=2, padding=1), (3, 8, 8)),
    ("Flatten", nn.Flatten, (3, 4, 5)),
    ("Flatten-middle", lambda: nn.Flatten(1, 2), (3, 4, 5)),
    ("Flatten-last", lambda: nn.Flatten(2, -1), (3, 4, 5)),
    ("Flatten-nothing", lambda: nn.Flatten(2, 2), (3, 4)),
    ("Dropout", lambda: nn.Dropout(0.5), (3, 4)),
    ("Identity", nn.Identity, (3, 4)),
    ("Sequential-nested", lambda: nn.Sequential(nn.Linear(6, 5), nn.Sequential(nn.Tanh(), nn.Linear(5, 3))), (6,)),
    ("SiLU", nn.SiLU, (3, 4)),
    ("ELU", lambda: nn.ELU(alpha=0.5), (3, 4)),
    ("Softplus", nn.Softplus, (3, 4)),
    ("Softplus-beta-threshold", lambda: nn.Softplus(beta=2.0, threshold=1.5), (3, 4)),
    ("LayerNorm", lambda: nn.LayerNorm(6), (6,)),
    ("LayerNorm-3d", lambda: nn.LayerNorm(6, eps=1e-3), (4, 6)),
    ("LayerNorm-two-axes", lambda: nn.LayerNorm((4, 6)), (4, 6)),
    ("LayerNorm-no-bias", lambda: nn.LayerNorm(6, bias=False), (4, 6)),
    ("LayerNorm-not-affine", lambda: nn.LayerNorm(6, elementwise_affine=False), (4, 6)),
    ("GroupNorm", lambda: nn.GroupNorm(2, 6), (6, 4, 4)),
    ("GroupNorm-1d", lambda: nn.GroupNorm(3, 6, eps=1e-3), (6, 5)),
    ("GroupNorm-channels-only", lambda: nn.GroupNorm(2, 6), (6,)),
    ("GroupNorm-not-affine", lambda: nn.GroupNorm(3, 6, affine=False), (6, 4, 4)),
    ("Embedding", lambda: nn.Embedding(10, 4), Indices((5,))),
    ("Embedding-padding_idx", lambda: nn.Embedding(10, 4, padding_idx=0), Indices((2, 5))),
    ("Conv1d", lambda: nn.Conv1d(3, 4, 3), (3, 9)),
    ("Conv1d-stride-padding-dilation", lambda: nn.Conv1d(3, 4, 3, stride=2, padding=2, dilation=2), (3, 11)),
    ("Conv1d-groups-no-bias", lambda: nn.Conv1d(4, 6, 3, groups=2, bias=False), (4, 8)),
    ("ConvTranspose2d", lambda: nn.ConvTranspose2d(3, 4, 3), (3, 5, 6)),
    ("ConvTranspose2d-all", lambda: nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3), padding=1, output_padding=1,
                                                       groups=2, dilation=(1, 2)), (4, 4, 3)),
    ("ConvTranspose1d-no-bias", lambda: nn.ConvTranspose1d(3, 4, 3, stride=2, output_padding=1, bias=False), (3, 7)),
    ("MaxPool1d", lambda: nn.MaxPool1d(2), (3, 9)),
    ("MaxPool1d-stride-padding-dilation", lambda: nn.MaxPool1d(3, stride=2, padding=1, dilation=2), (3, 11)),
    ("AvgPool1d", lambda: nn.AvgPool1d(2), (3, 9)),
    ("AvgPool1d-padding-counted", lambda: nn.AvgPool1d(3, stride=2, padding=1), (3, 8)),
    ("AdaptiveAvgPool2d-global", lambda: nn.AdaptiveAvgPool2d(1), (3, 7, 5)),
    ("AdaptiveAvgPool2d-uneven-bins", lambda: nn.AdaptiveAvgPool2d((3, 2)), (3, 7, 5)),
    ("AdaptiveAvgPool2d-one-axis", lambda: nn.AdaptiveAvgPool2d((None, 1)), (3, 7, 5)),
    ("AdaptiveAvgPool2d-rows-to-one", lambda: nn.AdaptiveAvgPool2d((1, 3)), (3, 4, 7)),
    ("AdaptiveAvgPool2d-same-size", lambda: nn.AdaptiveAvgPool2d((4, 5)), (3, 4, 5)),
    ("Dropout2d", lambda: nn.Dropout2d(0.5), (3, 4, 4)),
    # without batch_first, axis 0 is the sequence's: the dynamic axis is its length
    ("TransformerEncoderLayer", lambda: nn.TransformerEncoderLayer(8, 2, 16), (4, 8)),
    ("TransformerEncoderLayer-batch-first", lambda: nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), (4, 8)),
    ("TransformerEncoderLayer-norm-first-gelu",
     lambda: nn.TransformerEncoderLayer(8, 4, 16, activation="gelu", norm_first=True), (4, 8)),
    ("TransformerEncoderLayer-batch-first-norm-first",
     lambda: nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, norm_first=True), (4, 8)),
    ("TransformerEncoderLayer-no-bias", lambda: nn.TransformerEncoderLayer(8, 2, 16, bias=False), (4, 8)),
    ("TransformerEncoderLayer-activation-module",
     lambda: nn.TransformerEncoderLayer(8, 1, 16, activation=nn.SiLU(), batch_first=True), (4, 8)),
    ("TransformerEncoder", lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 2,
                                                         norm=nn.LayerNorm(8)), (4, 8)),
    ("TransformerEncoder-no-norm", lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2), (4, 8)),
]



def _input(shape, batch=3, seed=1):
    nx.manual_seed(seed)
    if isinstance(shape, Indices):
        return nx.randint(0, 10, (batch, *shape))
    return nx.randn(batch, *shape) * 2


@pytest.mark.parametrize(("make", "shape"), [c[1:] for c in LAYERS], ids=[c[0] for c in LAYERS])
@pytest.mark.parametrize("opset", [17, 20])
def test_layer_runs_in_onnxruntime_as_in_neurenix(make, shape, opset, roundtrip, random_statistics):
    nx.manual_seed(0)
    model = random_statistics(make())
    roundtrip(model, _input(shape), _input(shape, batch=5, seed=2), opset_version=opset, dynamic_axes=BATCH)


def test_flatten_of_everything_has_a_dynamic_length(roundtrip):
    roundtrip(nn.Flatten(0, -1).eval(), _input((3, 4)), _input((3, 4), batch=7), dynamic_axes=BATCH)


def test_pooling_an_unbatched_image(roundtrip):
    for layer in (nn.MaxPool2d(2), nn.AvgPool2d(3, stride=2, padding=1)):
        roundtrip(layer.eval(), nx.randn(3, 8, 8), nx.randn(5, 8, 8), dynamic_axes={"input": [0], "output": [0]})


def _conv4(channels=8, ways=5):
    def block(c_in):
        return [nn.Conv2d(c_in, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*block(1), *block(channels), *block(channels), *block(channels), nn.Flatten(),
                         nn.Linear(channels, ways))


def _trained(model, x):
    """Running statistics moved by a few training-mode passes, then eval mode."""
    model.train()
    with nx.no_grad():
        for _ in range(3):
            model(x)
    return model.eval()


def test_conv4_backbone(roundtrip):
    nx.manual_seed(0)
    model = _trained(_conv4(), nx.randn(8, 1, 28, 28))
    proto = roundtrip(model, nx.randn(2, 1, 28, 28), nx.randn(5, 1, 28, 28), dynamic_axes=BATCH)
    # readable: one node per layer, the weights under their state_dict names
    assert [n.op_type for n in proto.graph.node] == ["Conv", "BatchNormalization", "Relu", "MaxPool"] * 4 + \
        ["Flatten", "Gemm"]
    names = {i.name for i in proto.graph.initializer}
    assert names == {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    assert [d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim] == ["batch", "", "", ""]


def test_conv4_backbone_without_dynamic_axes_has_the_example_shape(roundtrip):
    nx.manual_seed(0)
    proto = roundtrip(_trained(_conv4(), nx.randn(8, 1, 28, 28)), nx.randn(4, 1, 28, 28))
    assert [d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim] == [4, 5]


def test_float64_mlp(roundtrip, random_statistics):
    nx.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 4),
                          nn.Sigmoid(), nn.Softmax(dim=1)).double()
    x = _input((6,)).double()
    proto = roundtrip(random_statistics(model), x, _input((6,), batch=9).double(), rtol=1e-12, atol=1e-14,
                      dynamic_axes=BATCH)
    assert {i.data_type for i in proto.graph.initializer} == {onnx.TensorProto.DOUBLE}


def test_float64_conv4_in_the_reference_evaluator(tmp_path):
    """ONNX Runtime's CPU provider has no float64 Conv: onnx's reference evaluator runs the file instead."""
    nx.manual_seed(0)
    model = _trained(_conv4().double(), nx.randn(4, 1, 28, 28, dtype=nx.float64))
    x = nx.randn(2, 1, 28, 28, dtype=nx.float64)
    nxo.export(model, x, tmp_path / "conv4.onnx")
    (got,) = ReferenceEvaluator(str(tmp_path / "conv4.onnx")).run(None, {"input": x.numpy()})
    np.testing.assert_allclose(got, model(x).numpy(), rtol=1e-10, atol=1e-12)


def test_gelu_is_one_op_from_opset_20():
    x = nx.randn(2, 3)
    for opset, ops in ((17, {"Erf"}), (20, {"Gelu"})):
        import io
        proto = nxo.export(nn.GELU().eval(), x, io.BytesIO(), opset_version=opset)
        assert ops <= {n.op_type for n in proto.graph.node}


def _ops(proto) -> set[str]:
    return {n.op_type for n in proto.graph.node}


@pytest.mark.parametrize("opset", [13, 16, 17, 18, 20, 21])
def test_norm_layers_are_their_op_where_the_opset_has_it(opset, roundtrip, random_statistics):
    """LayerNormalization from opset 17; GroupNormalization from 21 (18's scales groups, not channels); before,
    their formula."""
    nx.manual_seed(0)
    x, other = _input((6, 4, 4)), _input((6, 4, 4), batch=5, seed=2)
    proto = roundtrip(random_statistics(nn.LayerNorm(4)), x, other, opset_version=opset, dynamic_axes=BATCH)
    assert ("LayerNormalization" in _ops(proto)) == (opset >= 17)
    proto = roundtrip(random_statistics(nn.GroupNorm(3, 6)), x, other, opset_version=opset, dynamic_axes=BATCH)
    assert ("GroupNormalization" in _ops(proto)) == (opset >= 21)


def test_float64_norms_are_their_formula(roundtrip, random_statistics):
    """The ops compute their statistics in float32 at best (stash_type): a float64 graph writes the formula."""
    nx.manual_seed(0)
    model = random_statistics(nn.Sequential(nn.GroupNorm(2, 4), nn.LayerNorm(6)).double())
    x = _input((4, 6)).double()
    proto = roundtrip(model, x, _input((4, 6), batch=5).double(), rtol=1e-12, atol=1e-14, opset_version=21,
                      dynamic_axes=BATCH)
    assert not _ops(proto) & {"LayerNormalization", "GroupNormalization"}


@pytest.mark.parametrize("norm_first", [False, True])
def test_a_sequence_first_encoder_has_a_dynamic_length_and_batch(norm_first, roundtrip, random_statistics):
    nx.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, norm_first=norm_first, activation="gelu")
    model = random_statistics(nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(8)))
    axes = {"input": {0: "length", 1: "batch"}, "output": {0: "length", 1: "batch"}}
    roundtrip(model, nx.randn(5, 3, 8), nx.randn(2, 7, 8), nx.randn(9, 1, 8), dynamic_axes=axes)


def test_an_encoder_reads_as_its_layers(roundtrip):
    nx.manual_seed(0)
    model = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 3, norm=nn.LayerNorm(8))
    proto = roundtrip(model.eval(), nx.randn(2, 5, 8))
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("LayerNormalization") == 7 and ops.count("Softmax") == 3 and "Dropout" not in ops
    assert {"layers.2.linear2.bias", "layers.2.self_attn.out_proj.bias", "norm.weight"} <= \
        {i.name for i in proto.graph.initializer}


def test_unbatched_inputs(roundtrip, random_statistics):
    """Layers that take one unbatched sample, as neurenix does: the graph adds a batch axis of one where ONNX's
    op takes batches only."""
    nx.manual_seed(0)
    cases = [(nn.Conv1d(3, 4, 3, padding=1), (3, 9)), (nn.MaxPool1d(3, stride=2, padding=1), (3, 9)),
             (nn.AvgPool1d(2), (3, 9)), (nn.AdaptiveAvgPool2d((3, 2)), (3, 7, 5))]
    for layer, shape in cases:
        roundtrip(random_statistics(layer), nx.randn(*shape), nx.randn(*shape))
    axes = {"input": {0: "length"}, "output": {0: "length"}}
    for batch_first in (False, True):  # one sequence, of any length
        layer = random_statistics(nn.TransformerEncoderLayer(8, 2, 16, batch_first=batch_first))
        roundtrip(layer, nx.randn(5, 8), nx.randn(3, 8), dynamic_axes=axes)


def test_global_average_pooling_of_images_of_any_size(roundtrip):
    axes = {"input": {0: "n", 2: "h", 3: "w"}, "output": {0: "n"}}
    proto = roundtrip(nn.AdaptiveAvgPool2d(1).eval(), nx.randn(2, 3, 7, 5), nx.randn(4, 3, 12, 9), dynamic_axes=axes)
    assert _ops(proto) == {"ReduceMean"}


def _text_classifier(dtype=nx.float32):
    nx.manual_seed(0)
    return nn.Sequential(nn.Embedding(20, 8, padding_idx=0), nn.TransformerEncoderLayer(8, 2, 16, batch_first=True),
                         nn.Flatten(), nn.Linear(6 * 8, 3)).to(dtype).eval()


def test_int64_indices_into_an_embedding(roundtrip):
    tokens = nx.randint(0, 20, (4, 6))
    proto = roundtrip(_text_classifier(), tokens, nx.randint(0, 20, (9, 6)), dynamic_axes=BATCH)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert proto.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert proto.graph.node[0].op_type == "Gather"


def test_int64_indices_into_a_float64_embedding(tmp_path):
    """The graph's floats take the parameters' dtype where the input holds indices."""
    model, tokens = _text_classifier(nx.float64), nx.randint(0, 20, (4, 6))
    proto = nxo.export(model, tokens, tmp_path / "text.onnx")
    assert {i.data_type for i in proto.graph.initializer if i.name.endswith("weight")} == {onnx.TensorProto.DOUBLE}
    (got,) = ReferenceEvaluator(str(tmp_path / "text.onnx")).run(None, {"input": tokens.numpy()})
    np.testing.assert_allclose(got, model(tokens).numpy(), rtol=1e-10, atol=1e-12)
