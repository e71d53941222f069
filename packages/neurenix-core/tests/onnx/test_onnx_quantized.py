"""int8 models (neurenix.quantization) export as QDQ graphs that ONNX Runtime computes as neurenix does.

Compared at ONNX Runtime's basic graph optimizations, which run the float ops on the dequantized operands (the
same real numbers neurenix's int8 kernels multiply): each int8 layer equal to float32 rounding (rtol 1e-5). In a
deep model, that rounding (float sums in ORT, exact integer sums here) moves a value a layer quantizes next across a
rounding boundary now and then, a step's difference that the layers after it carry on: whole backbones are checked
within 5% of their largest output, and for the same classes. At its default, extended level
ORT fuses a dynamic layer's MatMul into its own uint8 x int8 kernel, which takes input steps of its own rounding
(measured: differences of about one input step); that level is checked with a tolerance of one step.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

if not os.environ.get("NEURENIX_REQUIRE_ONNX"):
    pytest.importorskip("onnx", reason="onnx is not installed (pip install 'neurenix-core[onnx]')")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")

import onnxruntime as ort

import neurenix as nx
from neurenix import models, nn
from neurenix import onnx as nxo
from neurenix import quantization as Q

BATCH = {"input": {0: "batch"}, "output": {0: "batch"}}


def _session(proto, level=ort.GraphOptimizationLevel.ORT_ENABLE_BASIC):
    options = ort.SessionOptions()
    options.graph_optimization_level = level
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _static(model, x):
    nx.manual_seed(5)
    return Q.quantize(model.eval(), lambda p: [p(x), p(nx.randn(*x.shape) * 1.5)])


MODELS = [
    ("Linear-static", lambda: nn.Sequential(nn.Linear(6, 4)), (6,), _static),
    ("Linear-static-3d-no-bias", lambda: nn.Sequential(nn.Linear(6, 4, bias=False)), (3, 6), _static),
    ("Linear-dynamic", lambda: nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3)), (6,),
     lambda m, x: Q.quantize_dynamic(m)),
    ("Linear-dynamic-3d", lambda: nn.Sequential(nn.Linear(6, 4)), (3, 6), lambda m, x: Q.quantize_dynamic(m)),
    ("Conv2d-strided-padded", lambda: nn.Sequential(nn.Conv2d(3, 4, (3, 5), stride=(2, 1), padding=(1, 2))),
     (3, 9, 8), _static),
    ("Conv2d-dilated-grouped", lambda: nn.Sequential(nn.Conv2d(4, 6, 3, dilation=2, padding=2, groups=2)),
     (4, 9, 9), _static),
    ("Conv2d-then-Linear", lambda: nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(27, 4)), (2, 5, 5),
     _static),
]
BACKBONES = [
    ("Conv4", lambda: models.Conv4(3, 8, out_features=5, image_size=20)),
    ("ResNet12", lambda: models.ResNet12(channels=(4, 8, 8, 16), out_features=5)),
]


def _export_and_run(q, x, others):
    with nx.no_grad():
        proto = nxo.export(q, x, io.BytesIO(), dynamic_axes=BATCH)
        session = _session(proto)
        pairs = [(session.run(None, {"input": inp.numpy()})[0], q(inp).numpy()) for inp in (x, *others)]
    ops = {n.op_type for n in proto.graph.node}
    assert "DequantizeLinear" in ops and ({"QuantizeLinear", "DynamicQuantizeLinear"} & ops)
    return pairs


@pytest.mark.parametrize(("make", "shape", "quantize"), [m[1:] for m in MODELS], ids=[m[0] for m in MODELS])
def test_quantized_layer_in_onnx_runtime(make, shape, quantize):
    nx.manual_seed(0)
    x = nx.randn(4, *shape)
    q = quantize(make().eval(), x)
    assert any(t.dtype is nx.int8 for t in q.state_dict().values())
    for got, want in _export_and_run(q, x, [nx.randn(7, *shape) * 0.5]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))


@pytest.mark.parametrize("make", [b[1] for b in BACKBONES], ids=[b[0] for b in BACKBONES])
def test_quantized_backbone_in_onnx_runtime(make):
    nx.manual_seed(0)
    x = nx.randn(6, 3, 20, 20)
    q = _static(make().eval(), x)
    for got, want in _export_and_run(q, x, [nx.randn(3, 3, 20, 20)]):
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= 0.05 * np.abs(want).max()
        assert (got.argmax(1) == want.argmax(1)).all()


def test_extended_optimizations_stay_within_an_input_step():
    nx.manual_seed(1)
    q = Q.quantize_dynamic(nn.Sequential(nn.Linear(16, 8)).eval())
    x = nx.randn(2, 5, 16)
    with nx.no_grad():
        proto = nxo.export(q, x, io.BytesIO())
        (got,) = _session(proto, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED).run(None, {"input": x.numpy()})
        want = q(x).numpy()
    scale, _ = Q.affine_qparams(float(x.min().item()), float(x.max().item()))
    step = scale * float(q[0].weight.abs().float().sum(1).max().item() * q[0].weight_scale.max().item())
    assert np.abs(got - want).max() <= step
