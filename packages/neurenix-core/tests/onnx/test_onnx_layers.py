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

# (id, layer, shape of an input without its batch axis)
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
]


def _input(shape, batch=3, seed=1):
    nx.manual_seed(seed)
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
