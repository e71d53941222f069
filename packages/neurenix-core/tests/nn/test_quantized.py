"""The int8 layers of neurenix.nn.quantized: made from float layers, close to them, saved and loaded, on the cpu
only."""

from __future__ import annotations

import io

import numpy as np
import pytest

import neurenix as nx
from neurenix import nn
from neurenix.backend import Backend, hookimpl, numpy_backend
from neurenix.nn import quantized as nnq


def _bound(x: nx.Tensor, layer) -> float:
    """A bound on |int8 layer - float layer|: half an input step times the weights' row sums of magnitudes, plus
    half a weight step times the input's magnitudes (the rounding of each operand), per output."""
    w = layer.weight.detach().abs().reshape(layer.weight.shape[0], -1).sum(1).max().item()
    return float(x.abs().max().item()) / 127 * w * 2


@pytest.mark.parametrize("shape", [(5, 12), (2, 3, 12), (12,)], ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_dynamic_linear_is_close_to_the_float_layer(shape, bias):
    nx.manual_seed(0)
    f = nn.Linear(12, 7, bias=bias)
    q = nnq.dynamic.Linear.from_float(f)
    x = nx.randn(*shape)
    with nx.no_grad():
        err = (q(x) - f(x)).abs().max().item()
    assert q(x).shape == f(x).shape and err <= _bound(x, f)
    assert q.weight.dtype is nx.int8 and q.weight_scale.shape == (7,) and (q.bias is None) == (not bias)


def test_static_conv2d_is_close_to_the_float_layer():
    nx.manual_seed(1)
    f = nn.Conv2d(4, 6, 3, stride=2, padding=1, dilation=1, groups=2)
    x = nx.randn(3, 4, 9, 9)
    q = nnq.Conv2d.from_float(f, *nx.quantization.affine_qparams(x.min().item(), x.max().item()))
    with nx.no_grad():
        assert (q(x) - f(x)).abs().max().item() <= _bound(x, f)
    assert "scale=" in repr(q) and "groups=2" in repr(q)


def test_state_dict_round_trip_through_a_file():
    nx.manual_seed(2)
    q = nnq.Linear.from_float(nn.Linear(8, 3), 0.05, -7)
    f = io.BytesIO()
    nx.save(q.state_dict(), f)
    f.seek(0)
    fresh = nnq.Linear(8, 3)
    fresh.load_state_dict(nx.load(f))
    x = nx.randn(4, 8)
    np.testing.assert_array_equal(fresh(x).numpy(), q(x).numpy())
    assert fresh.weight.dtype is nx.int8 and fresh.zero_point.item() == -7


class _NoInt8(Backend):
    """A device type whose backend declares the default dtypes, without int8 (NumPy's kernels)."""

    device_type, name = "noint8", "noint8-numpy"

    def kernels(self):
        return dict(numpy_backend.KERNELS)


class _Plugin:
    @hookimpl
    def neurenix_backends(self):
        return [_NoInt8()]


def test_int8_layers_stay_where_int8_is_declared():
    """Moving an int8 model to a device whose backend does not declare int8 raises, naming it."""
    plugin = _Plugin()
    nx.backend.register(plugin, "test-noint8")
    try:
        q = nnq.dynamic.Linear.from_float(nn.Linear(4, 2))
        with pytest.raises(TypeError, match="noint8 .*has no int8 tensors"):
            q.to("noint8")
        assert nn.Linear(4, 2).to("noint8").weight.device.type == "noint8"  # float models move
    finally:
        nx.backend.unregister(plugin)


def test_a_layer_made_empty_computes_from_its_loaded_state_only():
    q = nnq.Conv2d(2, 3, 3, padding=1)
    assert q.weight.dtype is nx.int8 and not q.weight.any().item()
    assert q(nx.ones(1, 2, 4, 4)).abs().max().item() == 0.0  # zero weights and bias until loaded


def test_a_float_state_does_not_load_into_int8_weights():
    """Casting float weights to int8 would truncate them to nonsense: loading a float model's state into a
    quantized one raises, strict or not."""
    q = nnq.dynamic.Linear.from_float(nn.Linear(4, 2))
    float_state = nn.Linear(4, 2).state_dict()
    for strict in (True, False):
        with pytest.raises((TypeError, RuntimeError), match="int8|weight_scale"):
            q.load_state_dict(float_state, strict=strict)
