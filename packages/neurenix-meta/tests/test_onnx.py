"""ONNX export of what meta-learning produces: an adapted model (a plain copy, neurenix.onnx.export as is) and a
few-shot classifier with its support set baked in (neurenix.meta.onnx), run in ONNX Runtime.

onnx and onnxruntime are optional: these tests skip without them, unless NEURENIX_REQUIRE_ONNX is set (as in
the tox envs that install them), where a missing one is a failure."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pytest

if not os.environ.get("NEURENIX_REQUIRE_ONNX"):
    pytest.importorskip("onnx", reason="onnx is not installed (pip install 'neurenix-core[onnx]')")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")

import onnxruntime as ort

import neurenix as nx
from neurenix import nn
from neurenix import onnx as nxo
from neurenix.meta import ANIL, MAML, R2D2, MetaSGD, PrototypicalNetworks, RelationNetworks, iMAML
from neurenix.meta.onnx import export_classifier

QUERIES = {"input": {0: "queries"}, "output": {0: "queries"}}


def _session(proto):
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def _run(proto, x):
    return _session(proto).run(None, {"input": x.numpy()})[0]


def _conv(ways=None):
    """A small Conv-4-like network on 1x12x12 images: two conv blocks, and a linear head when ``ways`` is given."""
    layers = []
    for c_in in (1, 4):
        layers += [nn.Conv2d(c_in, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(36, ways)) if ways else nn.Sequential(*layers)


def _images(ways=3, shots=2, queries=4, seed=0):
    """A task of ``ways`` classes of noisy 12x12 patterns: support (ways*shots) and query (ways*queries) rows."""
    rng = np.random.default_rng(seed)
    patterns = rng.normal(size=(ways, 1, 12, 12))

    def rows(n):
        y = np.repeat(np.arange(ways), n)
        return nx.tensor((patterns[y] + 0.5 * rng.normal(size=(len(y), 1, 12, 12))).astype(np.float32)), nx.tensor(y)

    return (*rows(shots), *rows(queries))


def _random_statistics(model):
    """Running statistics of random values (meta-training leaves them at zeros and ones, which would hide a mix-up)."""
    rng = np.random.default_rng(0)
    with nx.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(nx.tensor(rng.normal(size=m.num_features), dtype=nx.float32))
                m.running_var.copy_(nx.tensor(rng.uniform(0.5, 2.0, size=m.num_features), dtype=nx.float32))


@pytest.mark.parametrize("learner", [
    lambda m: MAML(m, inner_lr=0.1, inner_steps=2),
    lambda m: ANIL(m, inner_lr=0.1, inner_steps=2),
    lambda m: MetaSGD(m, inner_lr=0.1),
    lambda m: iMAML(m, inner_lr=0.1, inner_steps=3),
], ids=["MAML", "ANIL", "MetaSGD", "iMAML"])
def test_adapted_model_exports_with_its_adapted_weights_and_support_statistics(learner):
    sx, sy, qx, _ = _images()
    meta = learner(_conv(ways=3))
    adapted = meta.adapt_to_task(sx, sy)
    with pytest.warns(UserWarning, match="training mode"):  # the copy keeps the model's mode
        proto = nxo.export(adapted, sx, io.BytesIO(), dynamic_axes=QUERIES)
    adapted.eval()
    for x in (sx, qx):
        np.testing.assert_allclose(_run(proto, x), adapted(x).numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(_run(proto, qx), meta.model.eval()(qx).numpy(), atol=1e-3)  # not the unadapted model


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("embedding", [_conv, lambda: nn.Sequential(_conv(), nn.Flatten(), nn.Linear(36, 8))],
                         ids=["feature-maps", "vectors"])
def test_prototypical_classifier_gives_the_few_shot_classifiers_logits(metric, embedding):
    sx, sy, qx, qy = _images()
    net = PrototypicalNetworks(embedding(), distance_metric=metric)
    net.meta_learn([(sx, sy, qx, qy)] * 2, epochs=2)  # moves the weights off their initial values
    _random_statistics(net.eval())
    classifier = net.adapt_to_task(sx, sy)
    proto = export_classifier(net, sx, sy, qx, io.BytesIO(), dynamic_axes=QUERIES)
    for x in (qx, qx[:5], sx):
        logits = _run(proto, x)
        np.testing.assert_allclose(logits, classifier(x).numpy(), rtol=1e-5, atol=1e-6)
        assert np.array_equal(logits.argmax(1), classifier(x).argmax(1).numpy())
    assert (_run(proto, qx).argmax(1) == qy.numpy()).mean() > 0.5  # the classifier does classify


def test_export_classifier_leaves_the_learner_as_it_was():
    sx, sy, qx, _ = _images()
    net = PrototypicalNetworks(_conv())
    net.model[0].eval()
    modes = [m.training for m in net.modules()]
    state = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    export_classifier(net, sx, sy, qx, io.BytesIO())
    assert [m.training for m in net.modules()] == modes
    assert all(np.array_equal(v.numpy(), state[k]) for k, v in net.state_dict().items())


def test_a_classifier_adapted_in_training_mode_exports_its_own_prototypes():
    """Its support set was embedded with batch statistics; the graph bakes in those prototypes and embeds
    queries in inference mode, as the classifier does after eval()."""
    sx, sy, qx, _ = _images()
    classifier = PrototypicalNetworks(_conv()).adapt_to_task(sx, sy)
    with pytest.warns(UserWarning, match="FewShotClassifier is in training mode"):
        proto = nxo.export(classifier, qx, io.BytesIO())
    np.testing.assert_allclose(_run(proto, qx), classifier.eval()(qx).numpy(), rtol=1e-5, atol=1e-6)


def test_graph_names_the_prototypes():
    sx, sy, qx, _ = _images()
    net = PrototypicalNetworks(_conv()).eval()
    proto = nxo.export(net.adapt_to_task(sx, sy).eval(), qx, io.BytesIO())
    protos = {i.name: i for i in proto.graph.initializer}["learner.prototypes"]
    np.testing.assert_allclose(np.frombuffer(protos.raw_data, np.float32).reshape(tuple(protos.dims)),
                               net.compute_prototypes(sx, sy).numpy(), rtol=1e-6)
    assert "learner.model.0.weight" in {i.name for i in proto.graph.initializer}


def test_r2d2_classifier():
    sx, sy, qx, _ = _images()
    net = R2D2(nn.Sequential(_conv(), nn.Flatten()), alpha=2.0, beta=0.5).eval()
    classifier = net.adapt_to_task(sx, sy)
    proto = export_classifier(net, sx, sy, qx, io.BytesIO(), dynamic_axes=QUERIES)
    for x in (qx, qx[:2]):
        np.testing.assert_allclose(_run(proto, x), classifier(x).numpy(), rtol=1e-5, atol=1e-6)


def test_a_head_without_a_rule_is_named():
    sx, sy, qx, _ = _images()
    net = RelationNetworks(nn.Sequential(_conv(), nn.Flatten()), nn.Linear(72, 1)).eval()
    with pytest.raises(nxo.UnsupportedModuleError, match="FewShotClassifier of RelationNetworks, whose head has no "
                       "ONNX export rule \\(supported: PrototypicalNetworks, R2D2\\)"):
        export_classifier(net, sx, sy, qx, io.BytesIO())


def test_a_subclass_with_its_own_distance_is_not_exported_as_prototypical_networks():
    class Manhattan(PrototypicalNetworks):
        def compute_distances(self, q, p):
            return (q.unsqueeze(-2) - p.unsqueeze(-3)).abs().sum(-1)

    sx, sy, qx, _ = _images()
    with pytest.raises(nxo.UnsupportedModuleError, match="FewShotClassifier of Manhattan"):
        export_classifier(Manhattan(_conv()), sx, sy, qx, io.BytesIO())


def test_without_onnx_the_error_names_the_extra():
    code = "import sys; sys.modules['onnx'] = None; import neurenix.meta.onnx"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "pip install 'neurenix-core[onnx]'" in out.stderr, out.stderr


@pytest.mark.parametrize("calibrated", ["static", "dynamic"])
def test_int8_prototypical_classifier_exports_and_keeps_its_answers(calibrated):
    """A trained learner quantized as a whole (its encoder's layers become int8), adapted and exported: ONNX
    Runtime gives the int8 classifier's logits, and the int8 learner answers as the float one on these tasks."""
    from neurenix import quantization as Q

    sx, sy, qx, qy = _images()
    net = PrototypicalNetworks(nn.Sequential(_conv(), nn.Flatten(), nn.Linear(36, 8)))
    net.meta_learn([(sx, sy, qx, qy)] * 2, epochs=2)
    _random_statistics(net.eval())
    if calibrated == "static":
        q = Q.quantize(net, lambda p: [p.model(sx), p.model(qx)])
        assert type(q.model[0][0]) is nn.quantized.Conv2d and type(q.model[2]) is nn.quantized.Linear
    else:
        q = Q.quantize_dynamic(net)
        assert type(q.model[2]) is nn.quantized.dynamic.Linear
    assert type(net.model[2]) is nn.Linear  # the float learner is left as it was
    proto = export_classifier(q, sx, sy, qx, io.BytesIO(), dynamic_axes=QUERIES)
    classifier = q.adapt_to_task(sx, sy)
    for x in (qx, sx):  # (ORT's float sums move a value across a rounding boundary now and then: a step's worth)
        got, want = _run(proto, x), classifier(x).detach().numpy()
        assert np.abs(got - want).max() <= 0.05 * np.abs(want).max() and (got.argmax(1) == want.argmax(1)).all()
    assert (classifier(qx).argmax(1).numpy() == net.adapt_to_task(sx, sy)(qx).argmax(1).numpy()).mean() >= 0.9
