"""quantize_dynamic, prepare / convert / quantize and fuse_conv_bn on whole models."""

from __future__ import annotations

import numpy as np
import pytest

import neurenix as nx
from neurenix import nn
from neurenix import quantization as Q
from neurenix.nn import quantized as nnq


def _convnet(bn_stats: bool = True) -> nn.Sequential:
    nx.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8, track_running_stats=bn_stats), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.Flatten(), nn.Linear(8 * 4 * 4, 5))
    for _ in range(3):
        m(nx.randn(16, 3, 8, 8))  # running statistics that are not zeros and ones
    return m.eval()


def test_quantize_dynamic_swaps_the_linear_layers_of_a_copy():
    m = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 2)))
    q = Q.quantize_dynamic(m)
    assert [type(x) for x in (q[0], q[2][0], q[2][1])] == [nnq.dynamic.Linear] * 3
    assert type(m[0]) is nn.Linear  # not in place
    only = Q.quantize_dynamic(m, {"2.1"})
    assert type(only[2][1]) is nnq.dynamic.Linear and type(only[0]) is nn.Linear
    x = nx.randn(5, 6)
    with nx.no_grad():
        assert (q(x) - m(x)).abs().max().item() < 0.05


def test_quantize_dynamic_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="dtype"):
        Q.quantize_dynamic(nn.Sequential(nn.Linear(2, 2)), dtype=nx.int64)
    with pytest.raises(ValueError, match="Conv2d"):
        Q.quantize_dynamic(nn.Sequential(nn.Conv2d(2, 2, 1)), {nn.Conv2d})
    with pytest.raises(ValueError, match="holds the Linear"):
        Q.quantize_dynamic(nn.Linear(2, 2))


def test_fuse_conv_bn_is_the_evaluation_mode_model():
    m = _convnet()
    fused = Q.fuse_conv_bn(m)
    assert sum(isinstance(x, nn.BatchNorm2d) for x in fused.modules()) == 0
    x = nx.randn(4, 3, 8, 8)
    with nx.no_grad():
        np.testing.assert_allclose(fused(x).numpy(), m(x).numpy(), rtol=1e-4, atol=1e-5)


def test_batch_norm_without_running_statistics_is_not_folded():
    fused = Q.fuse_conv_bn(_convnet(bn_stats=False))
    assert isinstance(fused[1], nn.BatchNorm2d) and isinstance(fused[5], nn.Identity)


def test_prepare_calibrate_convert():
    m = _convnet()
    calibration = [nx.randn(16, 3, 8, 8) for _ in range(4)]

    def calibrate(model, batches):
        with nx.no_grad():
            for b in batches:
                model(b)

    q = Q.quantize(m, calibrate, (calibration,))
    kinds = [type(x) for x in q.children()]
    assert kinds.count(nnq.Conv2d) == 2 and kinds.count(nnq.Linear) == 1 and nn.BatchNorm2d not in kinds
    x = calibration[0]
    with nx.no_grad():
        ref, got = m(x), q(x)
    assert (got - ref).abs().max().item() < 0.05 * ref.abs().max().item()
    assert (got.argmax(1) == ref.argmax(1)).float().mean().item() >= 0.9


def test_convert_needs_calibration():
    p = Q.prepare(_convnet())
    with pytest.raises(RuntimeError, match="calibration"):
        Q.convert(p)
    with pytest.raises(ValueError, match="prepare"):
        Q.convert(_convnet())
    with pytest.raises(ValueError, match="no Conv2d or Linear"):
        Q.prepare(nn.Sequential(nn.ReLU()))


def test_calibration_with_nan_raises():
    p = Q.prepare(_convnet())
    x = nx.randn(2, 3, 8, 8)
    x[0, 0, 0, 0] = float("nan")
    with nx.no_grad(), pytest.raises(ValueError, match="NaN"):
        p(x)


def test_int8_weights_take_at_most_0_3_of_the_float_bytes():
    m = _convnet()
    q = Q.quantize(m, lambda p: p(nx.randn(8, 3, 8, 8)))

    def nbytes(model, skip=("running_", "num_batches")):
        return sum(t.numel() * t.dtype.itemsize for k, t in model.state_dict().items() if not k.rpartition(".")[2]
                   .startswith(skip))
    assert nbytes(q) <= 0.3 * nbytes(m)


def test_two_threads_running_an_int8_model_get_the_sequential_results():
    import threading

    q = Q.quantize(_convnet(), lambda p: p(nx.randn(8, 3, 8, 8)))
    dyn = Q.quantize_dynamic(nn.Sequential(nn.Linear(16, 8)))
    inputs = [(q, nx.randn(6, 3, 8, 8)), (dyn, nx.randn(5, 16) * 3), (q, nx.randn(4, 3, 8, 8) * 0.1),
              (dyn, nx.randn(7, 16))]
    with nx.no_grad():
        want = [m(x).numpy() for m, x in inputs]
        got = [None] * len(inputs)

        def work(i):
            for _ in range(20):
                got[i] = inputs[i][0](inputs[i][1]).numpy()

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
