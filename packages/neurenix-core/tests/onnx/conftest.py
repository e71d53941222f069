"""Round trips through ONNX Runtime: export a model, run the file, compare with neurenix's own output.

onnx and onnxruntime are optional (``pip install 'neurenix-core[onnx]' onnxruntime``): the test modules skip
without them, unless NEURENIX_REQUIRE_ONNX is set (as in the tox envs that install them), where a missing one
is a failure.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

import neurenix as nx


def _random_statistics(model, seed: int = 0):
    rng = np.random.default_rng(seed)
    with nx.no_grad():
        for name, t in [*model.named_parameters(), *model.named_buffers()]:
            leaf = name.rpartition(".")[2]
            if leaf == "running_mean" or leaf.endswith("bias") or (leaf == "weight" and t.ndim == 1):
                t.copy_(nx.tensor(rng.normal(size=t.shape), dtype=t.dtype))
            elif leaf == "running_var":
                t.copy_(nx.tensor(rng.uniform(0.5, 2.0, size=t.shape), dtype=t.dtype))
    return model.eval()


@pytest.fixture
def random_statistics():
    """``random_statistics(model)``: ``model`` with random biases (MultiheadAttention's in_proj_bias too), 1-D
    weights (the norms') and running statistics (fresh ones are zeros and ones, which would hide a mix-up), in eval
    mode."""
    return _random_statistics


@pytest.fixture
def roundtrip():
    """``roundtrip(model, x, *others, **export_options)``: export ``model`` for ``x``, run the file in ONNX
    Runtime on ``x`` and each of ``others``, and check it computes what ``model`` does (rtol 1e-5); returns
    the ModelProto."""
    import onnxruntime as ort

    from neurenix import onnx as nxo

    def run(model, x, *others, rtol=1e-5, atol=1e-6, **options):
        f = io.BytesIO()
        proto = nxo.export(model, x, f, **options)
        session = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])
        for inp in (x, *others):
            (got,) = session.run(None, {proto.graph.input[0].name: inp.numpy()})
            expected = model(inp).numpy()
            assert got.shape == expected.shape and got.dtype == expected.dtype
            np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)
        return proto

    return run
