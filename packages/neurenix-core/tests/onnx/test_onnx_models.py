"""The backbones of neurenix.models at small widths, computed by ONNX Runtime as neurenix computes them (rtol 1e-5,
atol 1e-6, float32), for the example's batch size and another one (a dynamic batch axis)."""

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
from neurenix import models, nn
from neurenix import onnx as nxo

BATCH = {"input": {0: "batch"}, "output": {0: "batch"}}
TEXT = {"input": {0: "batch", 1: "length"}, "output": {0: "batch"}}


def _images(batch, size=20, seed=1):
    nx.manual_seed(seed)
    return nx.randn(batch, 3, size, size)


IMAGE_MODELS = [
    ("Conv4", lambda: models.Conv4(3, 8, image_size=20), 20),
    ("Conv4-head", lambda: models.Conv4(3, 8, out_features=5, image_size=20), 20),
    ("ResNet12Block", lambda: models.ResNet12Block(3, 4), 20),
    ("ResNet12Block-dropblock", lambda: models.ResNet12Block(3, 4, models.DropBlock2d(0.2, 3)), 20),
    ("ResNet12", lambda: models.ResNet12(channels=(4, 8, 8, 16)), 20),
    ("ResNet12-head-drop", lambda: models.ResNet12(channels=(4, 8, 8, 16), drop_rate=0.1, dropblock_size=2,
                                                   out_features=5), 20),
    ("ResNet12-flattened", lambda: models.ResNet12(channels=(4, 8, 8, 16), avg_pool=False), 20),
    ("WideResNet-10-1", lambda: models.WideResNet(10, 1), 12),
    ("WideResNet-16-2-head-drop", lambda: models.WideResNet(16, 2, drop_rate=0.3, out_features=4), 12),
    ("WideBasicBlock-projection", lambda: models.WideBasicBlock(3, 8, 2, 0.0), 12),
    ("DropBlock2d", lambda: models.DropBlock2d(0.5, 3), 12),
]


@pytest.mark.parametrize(("make", "size"), [c[1:] for c in IMAGE_MODELS], ids=[c[0] for c in IMAGE_MODELS])
def test_image_backbone_runs_in_onnxruntime_as_in_neurenix(make, size, roundtrip, random_statistics):
    nx.manual_seed(0)
    model = random_statistics(make())
    roundtrip(model, _images(2, size), _images(5, size, seed=2), dynamic_axes=BATCH)


def test_wrn28_10_keeps_its_base_rule():
    assert nxo.rules.rule_for(models.WRN28_10(), "") is nxo.rules.rule_for(models.WideResNet(10, 1), "")


def test_resnet12_reads_as_its_layers(roundtrip, random_statistics):
    nx.manual_seed(0)
    model = random_statistics(models.ResNet12(channels=(4, 8, 8, 16), out_features=5))
    proto = roundtrip(model, _images(2), _images(3, seed=2), dynamic_axes=BATCH)
    ops = [n.op_type for n in proto.graph.node]
    block = ["Conv", "BatchNormalization", "LeakyRelu"] * 2 + ["Conv", "BatchNormalization", "Conv",
                                                               "BatchNormalization", "Add", "LeakyRelu", "MaxPool"]
    assert ops == block * 4 + ["ReduceMean", "Gemm"]
    names = {i.name for i in proto.graph.initializer}
    assert {k for k in model.state_dict() if not k.endswith("num_batches_tracked")} <= names
    assert "layer1.0.downsample.0.weight" in names


def _classifier(**options):
    nx.manual_seed(0)
    kwargs = {"d_model": 8, "nhead": 2, "num_layers": 2, "dim_feedforward": 16} | options
    return models.TransformerEncoderClassifier(20, **kwargs)


def _tokens(rows):
    return nx.tensor(np.array(rows, np.int64))


PADDED = _tokens([[3, 4, 5, 0, 0], [1, 2, 3, 4, 5]])
OTHERS = (_tokens([[3, 0, 0, 0, 0], [1, 2, 0, 4, 5], [7, 7, 7, 7, 7]]),  # another batch size
          _tokens([[3, 9, 0, 0, 0, 0, 0], [1, 2, 3, 0, 5, 1, 1]]),  # a longer sequence
          _tokens([[6, 0, 0], [1, 2, 3]]))  # a shorter one

TEXT_MODELS = [
    ("mean-over-tokens", {}),
    ("mean-head", {"out_features": 3}),
    ("first-token", {"pooling": "first"}),
    ("no-padding-idx", {"padding_idx": None}),
    ("odd-d_model-gelu", {"d_model": 7, "nhead": 1, "activation": "gelu", "padding_idx": 2}),
]


@pytest.mark.parametrize("options", [c[1] for c in TEXT_MODELS], ids=[c[0] for c in TEXT_MODELS])
def test_transformer_encoder_classifier_masks_padding_for_any_length(options, roundtrip, random_statistics):
    model = random_statistics(_classifier(**options))
    proto = roundtrip(model, PADDED, *OTHERS, dynamic_axes=TEXT)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64


def test_the_padding_mask_changes_the_output(roundtrip, random_statistics):
    """Padding keys are masked in attention and left out of the mean: the exported graph is not the unmasked one."""
    model = random_statistics(_classifier())
    roundtrip(model, PADDED, dynamic_axes=TEXT)
    unmasked = model.encoder(model.embedding(PADDED) + nx.tensor(models.sinusoidal_positions(5, 8),
                                                                  dtype=nx.float32)).mean(1)
    assert not np.allclose(unmasked.numpy(), model(PADDED).numpy(), atol=1e-3)


def test_a_float64_text_classifier_in_the_reference_evaluator(tmp_path):
    from onnx.reference import ReferenceEvaluator

    model = _classifier(out_features=3).to(nx.float64).eval()
    nxo.export(model, PADDED, tmp_path / "text.onnx", dynamic_axes=TEXT)
    for tokens in (PADDED, OTHERS[1]):
        (got,) = ReferenceEvaluator(str(tmp_path / "text.onnx")).run(None, {"input": tokens.numpy()})
        np.testing.assert_allclose(got, model(tokens).numpy(), rtol=1e-10, atol=1e-12)


class OwnForward(models.ResNet12Block):
    def forward(self, x):
        return super().forward(x) * 2


def test_a_backbone_subclass_with_its_own_forward_is_refused():
    with pytest.raises(nxo.UnsupportedModuleError, match="is a .*OwnForward, which has no ONNX export rule"):
        nxo.export(nn.Sequential(OwnForward(3, 4)).eval(), _images(2), io.BytesIO())
