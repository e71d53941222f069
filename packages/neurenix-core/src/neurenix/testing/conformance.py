"""The backend conformance suite: one set of pytest tests every backend must pass.

Use it from a backend's own tests by importing the tests and naming the device under test::

    import pytest
    from neurenix.testing.conformance import *  # noqa: F403  (collects the suite here)

    @pytest.fixture(scope="module")
    def neurenix_device():
        return "mydevice"

Values are compared with NumPy in every dtype the backend declares; gradients with finite
differences in float64 (first and second order) where the backend has float64, and otherwise with the
``cpu`` device's float64 gradients. Beyond values, the suite holds every backend to the same semantics:
a function compiled with ``neurenix.compile`` and replayed (by core, or by the backend's
``compile_program`` runner) gives what running it eagerly gives; NaN propagates as in NumPy (max, min,
their arg-versions, maximum, minimum, relu, pooling, whose gradient goes to the first NaN or maximum);
every op agrees with NumPy on zero-size inputs (or raises the error NumPy raises, in the framework's own
words); out-of-range indices raise IndexError (at the op, or on a device that checks asynchronously at the
latest at the next read from that device); and two threads using the device at once get exactly the
results of running one after the other.
"""

from __future__ import annotations

import os
import threading
import warnings

import numpy as np
import pytest

import neurenix as nx
from neurenix.autograd import grad as autograd_grad
from neurenix.errors import DeviceError, ShapeError
from neurenix.testing import reference
from neurenix.testing.cases import ALL, CASES, FLOATS, NAN_CASES, OpCase, zero_size_variants
from neurenix.testing.gradcheck import gradcheck, gradgradcheck

# every test, so that `from neurenix.testing.conformance import *` collects the whole suite
# (tests/conformance/test_suite.py checks that none is missing)
__all__ = [
    "conformance_device",
    "neurenix_device",
    "test_broadcast_error_names_shapes",
    "test_captured_gradients",
    "test_captured_replay_values",
    "test_captured_training_step",
    "test_captured_zero_d_bools_stay_apart",
    "test_cast_all_pairs",
    "test_deepcopy_and_pickle",
    "test_erf_precision",
    "test_full",
    "test_gradients",
    "test_index_out_of_range_raises",
    "test_index_put_repeated_indices_add_up",
    "test_int8_is_refused_where_undeclared",
    "test_int8_values",
    "test_max_pool2d_gradient_goes_to_the_first_maximum",
    "test_mixing_devices_is_an_error",
    "test_mlp_training_step",
    "test_nan_propagates",
    "test_optimizer_steps",
    "test_quantized_conv2d",
    "test_quantized_linear",
    "test_transfer_roundtrip",
    "test_two_threads_match_sequential",
    "test_unfold_batch_is_unfold_side_by_side",
    "test_unfold_fold_are_adjoint",
    "test_values",
    "test_zero_size",
]

TOLERANCE = {"float32": dict(rtol=2e-4, atol=2e-5), "float64": dict(rtol=1e-9, atol=1e-11),
             "int64": dict(rtol=0, atol=0), "bool": dict(rtol=0, atol=0)}


@pytest.fixture(scope="module")
def neurenix_device():
    pytest.fail("the conformance suite needs a `neurenix_device` fixture naming the device under test")


def required(device_type: str) -> bool:
    """Whether ``NEURENIX_REQUIRE_BACKENDS`` (device types or backend names, comma-separated) names
    ``device_type`` or one of its backends: then its tests must run here, not skip."""
    names = {n.strip() for n in os.environ.get("NEURENIX_REQUIRE_BACKENDS", "").split(",") if n.strip()}
    backends = {s.name for s in nx.list_backends() if s.device_type == device_type}
    return device_type in names or bool(names & backends)


@pytest.fixture
def conformance_device(neurenix_device):
    """The device under test, made the default for the test (so tensors a case creates land there). A device
    that cannot run here (no driver, no adapter, the plugin not installed) skips every test with the reason,
    unless ``NEURENIX_REQUIRE_BACKENDS`` names it: then the tests fail with it."""
    name = str(neurenix_device)
    try:
        dev = nx.Device(name).check()
    except DeviceError as e:
        if required(name.partition(":")[0]):
            pytest.fail(f"NEURENIX_REQUIRE_BACKENDS names {name.partition(':')[0]!r}, but: {e}")
        pytest.skip(f"{name} cannot run here: {e}")
    before = nx.default_device()
    nx.set_default_device(dev)
    yield dev
    nx.set_default_device(before)


def _supported(dev) -> tuple:
    return dev.kernels.dtypes or ALL


def _needs(dev, dtype: str) -> None:
    if dtype not in _supported(dev):
        pytest.skip(f"{dev} does not implement {dtype} (its backend declares {_supported(dev)})")


def _needs_output(dev, case: OpCase, dtype: str) -> None:
    """Skip a case whose result has a dtype the backend does not declare (``double()`` without float64)."""
    if case.out_dtype is not None:
        _needs(dev, case.out_dtype(dtype))


def _tensors(arrays, dev, requires_grad=False):
    return [nx.Tensor(a, device=dev, requires_grad=requires_grad and a.dtype.kind == "f") for a in arrays]


def _expected_dtype(case: OpCase, dtype: str, ref) -> str:
    if case.out_dtype is not None:
        return case.out_dtype(dtype)
    return nx.dtypes.from_numpy_kind(np.asarray(ref).dtype).name


def _params(cases) -> list:
    return [pytest.param(c, d, id=f"{c.name}-{d}") for c in cases for d in c.dtypes]


def _check_values(case: OpCase, dtype: str, dev, shapes=None) -> None:
    """``case`` on ``dev`` gives NumPy's values, shape and dtype, and leaves its inputs unchanged (NaN
    where NumPy has NaN: assert_allclose compares NaN as equal to NaN only)."""
    _needs(dev, dtype)
    _needs_output(dev, case, dtype)
    arrays = case.inputs(dtype, shapes)
    tensors = _tensors(arrays, dev)
    out = case.fn(*tensors)
    ref = np.asarray(case.ref(*arrays))
    assert str(out.device) == str(dev)
    assert out.dtype.name == _expected_dtype(case, dtype, ref), f"{case.name}: got dtype {out.dtype}"
    assert out.shape == ref.shape, f"{case.name}: got shape {out.shape}, NumPy gives {ref.shape}"
    np.testing.assert_allclose(out.numpy(), ref, **TOLERANCE[out.dtype.name], err_msg=case.name)
    for t, a in zip(tensors, arrays):
        np.testing.assert_array_equal(t.numpy(), a, err_msg=f"{case.name} modified its input")


@pytest.mark.parametrize(("case", "dtype"), _params(CASES))
def test_values(case: OpCase, dtype: str, conformance_device):
    """Each op gives NumPy's values and the expected dtype, and leaves its inputs unchanged."""
    _check_values(case, dtype, conformance_device)


@pytest.mark.parametrize(("case", "dtype"), _params(NAN_CASES))
def test_nan_propagates(case: OpCase, dtype: str, conformance_device):
    """NaN wins as in NumPy: max/min (whole tensor, an axis, long rows), argmax/argmin (the first NaN),
    maximum/minimum from either side, relu, clamp, sign, sums, softmax rows, comparisons, and pooling
    windows (padded too) holding a NaN."""
    _check_values(case, dtype, conformance_device)


@pytest.mark.parametrize("dtype", FLOATS)
def test_erf_precision(dtype, conformance_device):
    """erf (a composition of primitive kernels) is precise to a few ulp of its dtype, relatively: tiny
    arguments (no absolute-error floor), the switch between its two fits at 1, the tail, -0.0, inf and NaN."""
    import math

    _needs(conformance_device, dtype)
    x = np.concatenate([np.geomspace(1e-30, 1e-3, 8), np.linspace(0.9, 1.1, 41), np.linspace(0, 7, 141),
                        [np.inf, np.nan]])
    x = np.concatenate([x, -x, [-0.0]]).astype(dtype)
    got = nx.tensor(x, device=conformance_device).erf().numpy()
    want = np.array([math.erf(v) for v in x.astype(np.float64)])
    np.testing.assert_allclose(got, want, rtol=4 * np.finfo(dtype).eps, atol=0)
    assert np.signbit(got[-1]), "erf(-0.0) is -0.0"


def _pool_input(kind: str, dtype: str) -> np.ndarray:
    """(2, 2, 5, 5): NaNs (two in some windows), or small integers (many ties)."""
    rng = np.random.default_rng(3)
    if kind == "ties":
        return rng.integers(-1, 2, (2, 2, 5, 5)).astype(dtype)
    x = rng.standard_normal((2, 2, 5, 5))
    x.reshape(-1)[[0, 1, 7, 18, 24, 31, 33, 60, 61, 62, 99]] = np.nan
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("kind", ["nan", "ties"])
@pytest.mark.parametrize(("k", "stride", "padding"), [(2, 2, 0), (3, 2, 1), (2, 1, 0)], ids=["2s2", "3s2p1", "2s1"])
def test_max_pool2d_gradient_goes_to_the_first_maximum(k, stride, padding, kind, dtype, conformance_device):
    """max_pool2d gives NaN for a window holding one, and its gradient goes to one position per window: the
    first NaN, else the first maximum (row-major in the window), as NumPy's argmax picks it."""
    dev = conformance_device
    _needs(dev, dtype)
    x = _pool_input(kind, dtype)
    want, _ = reference.max_pool2d(x, k, stride, padding)
    g = np.random.default_rng(4).uniform(0.5, 1.5, want.shape).astype(dtype)
    t = nx.Tensor(x, device=dev, requires_grad=True)
    out = nx.nn.functional.max_pool2d(t, k, stride, padding)
    np.testing.assert_array_equal(out.numpy(), want)
    (out * nx.Tensor(g, device=dev)).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), reference.max_pool2d_grad(x, g, k, stride, padding),
                               **TOLERANCE[dtype])


def _numpy_outcome(case: OpCase, arrays):
    """(reference value, None) or (None, the exception NumPy raises), its warnings silenced."""
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(case.ref(*arrays)), None
    except Exception as e:  # whatever NumPy raises, the framework must raise its like
        return None, e


def _builtin_bases(exc: BaseException) -> tuple:
    """The built-in exception classes ``exc`` is an instance of (NumPy's AxisError: ValueError and IndexError)."""
    return tuple(c for c in type(exc).__mro__ if c.__module__ == "builtins" and issubclass(c, Exception)
                 and c is not Exception)


@pytest.mark.parametrize(("case", "shapes", "dtype"), [
    pytest.param(c, z, d, id=f"{c.name}-{'_'.join('x'.join(map(str, s)) for s in z)}-{d}")
    for c in CASES for z in zero_size_variants(c) for d in c.dtypes])
def test_zero_size(case: OpCase, shapes, dtype, conformance_device):
    """Each op on inputs with an empty axis gives NumPy's (empty, or reduced over nothing) result, or, where
    NumPy raises (the maximum of nothing), an error of the same built-in type in the framework's words."""
    dev = conformance_device
    _needs(dev, dtype)
    _needs_output(dev, case, dtype)
    _, err = _numpy_outcome(case, case.inputs(dtype, shapes))
    with warnings.catch_warnings():  # the mean of nothing is NaN, as in NumPy; NumPy's warning is not the contract
        warnings.simplefilter("ignore", RuntimeWarning)
        if err is None:
            _check_values(case, dtype, dev, shapes)
            return
        with pytest.raises(_builtin_bases(err)) as info:
            case.fn(*_tensors(case.inputs(dtype, shapes), dev)).numpy()
    assert str(info.value) != str(err), f"{case.name}: NumPy's own error came through: {err}"


DIFFERENTIABLE = [c for c in CASES if c.grad]


def _first_and_second(case: OpCase, dev, dtype: str):
    """Gradient and a second-order vjp of ``case`` at its inputs, computed on ``dev`` in ``dtype``."""
    xs = _tensors([a.astype(dtype) for a in case.inputs("float64")], dev, requires_grad=True)
    out = case.fn(*xs)
    rng = np.random.default_rng(1)
    v = nx.Tensor(rng.standard_normal(out.shape).astype(dtype), device=dev)
    grads = autograd_grad(out, xs, v, create_graph=True, allow_unused=True)
    used = [(x, g) for x, g in zip(xs, grads) if g is not None and g.requires_grad]
    weights = [nx.Tensor(rng.standard_normal(g.shape).astype(dtype), device=dev) for _, g in used]
    second = []
    if used:
        total = sum(((g * w).sum() for (_, g), w in zip(used, weights)), start=nx.zeros((), dtype=dtype, device=dev))
        second = autograd_grad(total, xs, allow_unused=True)
    return [None if g is None else g.numpy() for g in grads], [None if g is None else g.numpy() for g in second]


@pytest.mark.parametrize("order", [1, 2], ids=["first_order", "second_order"])
@pytest.mark.parametrize("case", DIFFERENTIABLE, ids=str)
def test_gradients(case: OpCase, order: int, conformance_device):
    """First- and second-order gradients (second order is what MAML needs): finite differences in
    float64 (gradcheck, gradgradcheck), else the cpu device's float64 gradients."""
    dev = conformance_device
    if "float64" in _supported(dev):
        xs = _tensors(case.inputs("float64"), dev, requires_grad=True)
        assert (gradcheck if order == 1 else gradgradcheck)(case.fn, xs)
        return
    _needs_output(dev, case, "float32")
    got = _first_and_second(case, dev, "float32")[order - 1]
    nx.set_default_device("cpu")  # the reference run's own tensors (index lists, targets) on cpu too
    try:
        want = _first_and_second(case, nx.Device("cpu"), "float64")[order - 1]
    finally:
        nx.set_default_device(dev)
    for g, w in zip(got, want):
        if order == 1:
            assert (g is None) == (w is None)
        if g is not None and w is not None:
            np.testing.assert_allclose(g, w, rtol=1e-3 * order, atol=1e-4 * order, err_msg=case.name)


@pytest.mark.parametrize("dtype", ALL)
def test_transfer_roundtrip(dtype, conformance_device):
    _needs(conformance_device, dtype)
    a = OpCase("roundtrip", None, None, ((2, 3, 4),), ALL).inputs(dtype)[0]
    t = nx.Tensor(a, device=conformance_device)
    assert t.dtype.name == dtype and t.shape == a.shape
    np.testing.assert_array_equal(t.numpy(), a)
    np.testing.assert_array_equal(t.to("cpu").to(conformance_device).numpy(), a)
    np.testing.assert_array_equal(nx.Tensor(a[0, 1, 2], device=conformance_device).numpy(), a[0, 1, 2])


@pytest.mark.parametrize("dtype", ALL)
def test_full(dtype, conformance_device):
    _needs(conformance_device, dtype)
    value = {"bool": True, "int64": 7}.get(dtype, 2.5)
    t = nx.full((3, 2), value, dtype=dtype, device=conformance_device)
    np.testing.assert_array_equal(t.numpy(), np.full((3, 2), value, dtype))
    assert nx.zeros(4, dtype=dtype, device=conformance_device).numpy().tolist() == [0] * 4


@pytest.mark.parametrize("src", ALL)
@pytest.mark.parametrize("dst", ALL)
def test_cast_all_pairs(src, dst, conformance_device):
    _needs(conformance_device, src)
    _needs(conformance_device, dst)
    a = np.array([[-2.5, 0.0, 1.0], [3.75, -0.5, 2.0]]).astype(src)
    got = nx.Tensor(a, device=conformance_device).to(dst)
    assert got.dtype.name == dst
    np.testing.assert_array_equal(got.numpy(), a.astype(dst))


# -- int8: the storage of quantized models, on backends that declare it ----------------------------------------------


def test_int8_is_refused_where_undeclared(conformance_device):
    """A backend that does not declare int8 never holds an int8 tensor: making one raises a TypeError naming the
    device, whichever way (data, full, cast, transfer)."""
    dev = conformance_device
    if "int8" in _supported(dev):
        pytest.skip(f"{dev} declares int8")
    a = np.array([1, -2], np.int8)
    for make in (lambda: nx.tensor(a, device=dev), lambda: nx.zeros(2, dtype=nx.int8, device=dev),
                 lambda: nx.tensor([1.0], device=dev).to(nx.int8), lambda: nx.tensor(a).to(dev)):
        with pytest.raises(TypeError, match=f"{dev.type}.*no int8"):
            make()


def test_int8_values(conformance_device):
    """int8 round trips, casts both ways (float -> int8 truncates toward zero, within range), wraps in arithmetic
    as two's complement, sums to int64 and promotes with int64 and floats as NumPy does."""
    dev = conformance_device
    _needs(dev, "int8")
    a = np.array([[-128, -1, 0], [1, 100, 127]], np.int8)
    t = nx.tensor(a, device=dev)
    assert t.dtype is nx.int8
    np.testing.assert_array_equal(t.numpy(), a)
    np.testing.assert_array_equal((t + t).numpy(), a + a)  # wraps
    np.testing.assert_array_equal((t * 3).numpy(), a * np.int8(3))
    assert t.sum().dtype is nx.int64 and int(t.sum().item()) == int(a.astype(np.int64).sum())
    assert (t + nx.tensor([1, 2, 3], device=dev)).dtype is nx.int64 and (t * 0.5).dtype is nx.float32
    np.testing.assert_array_equal(t.float().numpy(), a.astype(np.float32))
    f = nx.tensor([-2.7, -0.5, 0.5, 126.9], device=dev)
    np.testing.assert_array_equal(f.to(nx.int8).numpy(), np.array([-2, 0, 0, 126], np.int8))


def _np_quantize(x, scale: float, zero_point: int):
    return np.clip(np.rint(x / np.float32(scale)) + zero_point, -128, 127)


@pytest.mark.parametrize("zero_point", [-128, 0, 17, 127])
@pytest.mark.parametrize("shape", [(5, 19), (1, 64), (2, 3, 70), (0, 8), (19,)], ids=str)
def test_quantized_linear(shape, zero_point, conformance_device):
    """quantized_linear: exact integer sums of the quantized input (ONNX's QuantizeLinear: float32 division, half to
    even, saturating, +-inf too) times the int8 weights, dequantized per output channel."""
    dev = conformance_device
    _needs(dev, "int8")
    rng = np.random.default_rng(len(shape) * 1000 + zero_point)
    x = (rng.standard_normal(shape) * 2).astype(np.float32)
    if x.size > 3:
        x.reshape(-1)[:3] = [np.inf, -np.inf, 0.5 * 0.03 * 7]  # saturating, and a tie to round half to even
    wq = rng.integers(-127, 128, (6, shape[-1])).astype(np.int8)
    ws = rng.uniform(0.001, 0.02, 6).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    got = nx.quantization.quantized_linear(nx.tensor(x, device=dev), nx.tensor(wq, device=dev),
                                           nx.tensor(ws, device=dev), nx.tensor(b, device=dev), 0.03, zero_point)
    acc = (_np_quantize(x, 0.03, zero_point) - zero_point) @ wq.T.astype(np.float64)
    want = acc.astype(np.float32) * (np.float32(0.03) * ws) + b
    assert got.dtype is nx.float32 and got.shape == want.shape
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6 * max(1.0, float(np.abs(want).max(initial=0))))


@pytest.mark.parametrize(("stride", "padding", "dilation", "groups"),
                         [(1, 0, 1, 1), (1, 1, 1, 1), (2, 1, 1, 1), (1, 2, 2, 1), (1, 1, 1, 2)],
                         ids=["plain", "padded", "strided", "dilated", "grouped"])
def test_quantized_conv2d(stride, padding, dilation, groups, conformance_device):
    """quantized_conv2d: conv2d's exact integer sums over the quantized input, padding adding a real zero (the zero
    point), dequantized per output channel."""
    dev = conformance_device
    _needs(dev, "int8")
    rng = np.random.default_rng(stride * 100 + padding * 10 + dilation + groups)
    x = rng.standard_normal((3, 4, 9, 8)).astype(np.float32)
    wq = rng.integers(-127, 128, (6, 4 // groups, 3, 3)).astype(np.int8)
    ws = rng.uniform(0.001, 0.02, 6).astype(np.float32)
    scale, zero_point = 0.02, -5
    got = nx.quantization.quantized_conv2d(nx.tensor(x, device=dev), nx.tensor(wq, device=dev),
                                           nx.tensor(ws, device=dev), None, scale, zero_point, stride, padding,
                                           dilation, groups)
    c = nx.tensor(_np_quantize(x, scale, zero_point) - zero_point, dtype=nx.float64)
    acc = nx.nn.functional.conv2d(c, nx.tensor(wq.astype(np.float64)), None, stride, padding, dilation, groups)
    want = acc.numpy().astype(np.float32) * (np.float32(scale) * ws)[:, None, None]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6 * float(np.abs(want).max()))


def test_mixing_devices_is_an_error(conformance_device):
    if conformance_device.type == "cpu":
        pytest.skip("needs a device other than cpu")
    a = nx.ones(3, device=conformance_device)
    b = nx.ones(3, device="cpu")
    with pytest.raises(DeviceError, match=f"{conformance_device}.*cpu|cpu.*{conformance_device}"):
        a + b
    with pytest.raises(DeviceError):
        a @ b.reshape(3, 1)


def test_broadcast_error_names_shapes(conformance_device):
    a, b = nx.ones((3, 4), device=conformance_device), nx.ones((5,), device=conformance_device)
    with pytest.raises(ShapeError, match=r"add.*\(3, 4\).*\(5,\)"):
        a + b


#: a replay may reorder arithmetic (a backend's fused kernels): this close to eager, else bit for bit
REPLAY_TOLERANCE = {"float32": dict(rtol=1e-6, atol=1e-7), "float64": dict(rtol=1e-12, atol=1e-14),
                    "int64": dict(rtol=0, atol=0), "bool": dict(rtol=0, atol=0)}


def _replayed(fn, first: list, second: list):
    """``fn`` compiled, traced on ``first`` and replayed on ``second``; the replay's result, and whether a
    replay happened (a call whose op reads a computed value on the host runs eagerly, with a warning)."""
    compiled = nx.compile(fn)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", nx.CaptureWarning)
        compiled(*first)
        out = compiled(*second)
    for w in caught:
        assert "reads a value computed" in str(w.message), f"unexpected fallback to eager: {w.message}"
    replayed = compiled.stats["replays"] == 1
    assert replayed or caught, f"neither replayed nor said why not: {compiled.stats}"  # (else eager vs eager)
    return out, replayed


def _close(got, want, name: str) -> None:
    for g, w in zip(got if isinstance(got, (list, tuple)) else [got], want if isinstance(want, (list, tuple))
                    else [want], strict=True):
        if g is None or w is None:
            assert g is None and w is None, name
            continue
        assert g.shape == w.shape and g.dtype == w.dtype, name
        np.testing.assert_allclose(g.numpy(), w.numpy(), **REPLAY_TOLERANCE[g.dtype.name], err_msg=name)


@pytest.mark.parametrize(("case", "dtype"), _params(CASES))
def test_captured_replay_values(case: OpCase, dtype: str, conformance_device):
    """Each op compiled and replayed on new inputs of the same shapes gives what it gives eagerly."""
    dev = conformance_device
    _needs(dev, dtype)
    _needs_output(dev, case, dtype)
    arrays = case.inputs(dtype)
    first = _tensors(arrays, dev)
    second = _tensors([a * 0.75 if a.dtype.kind == "f" else a for a in arrays], dev)
    got, _ = _replayed(lambda *ts: case.fn(*ts).detach(), first, second)
    _close(got, case.fn(*second), case.name)


@pytest.mark.parametrize("case", DIFFERENTIABLE[::3], ids=str)
def test_captured_gradients(case: OpCase, conformance_device):
    """First and second-order gradients computed inside a compiled function (MAML's pattern) replay right."""
    dev = conformance_device
    dtype = "float64" if "float64" in _supported(dev) else "float32"
    _needs_output(dev, case, dtype)

    def grads(*xs):
        out = case.fn(*xs)
        v = nx.ones(out.shape, dtype=dtype)
        first = autograd_grad(out, xs, v, create_graph=True, allow_unused=True)
        used = [g for g in first if g is not None and g.requires_grad]
        second = autograd_grad(sum(g.sum() for g in used), xs, allow_unused=True) if used else []
        return [None if g is None else g.detach() for g in (*first, *second)]

    arrays = [a.astype(dtype) for a in case.inputs("float64")]
    first = _tensors(arrays, dev, requires_grad=True)
    second = _tensors([a * 0.75 if a.dtype.kind == "f" else a for a in arrays], dev, requires_grad=True)
    got, _ = _replayed(grads, first, second)
    _close(got, grads(*second), case.name)


def test_captured_zero_d_bools_stay_apart(conformance_device):
    """0-d bool results that are equal while tracing (NumPy gives every 0-d True one shared object) are still
    distinct values of the program, as results and as arguments: a replay on other values gives theirs."""
    def both(p, t):
        return (p > 1).all() & ~(t > 1).all()

    cases = [(2.0, 2.0), (2.0, 0.0), (0.0, 2.0), (0.0, 0.0)]
    compiled = nx.compile(both)
    for a, b in cases + cases:
        p, t = nx.tensor([a, 3.0]), nx.tensor([b, 3.0])
        assert compiled(p, t).item() == (a > 1 and not b > 1), (a, b)
    on_args = nx.compile(lambda x, y: x & ~y)
    for a, b in cases + cases:
        x, y = (nx.tensor([a]) > 1).all(), (nx.tensor([b]) > 1).all()
        assert on_args(x, y).item() == (a > 1 and not b > 1), (a, b)
    assert compiled.stats["replays"] >= 4 and on_args.stats["replays"] >= 4


def test_captured_training_step(conformance_device):
    """A compiled training step (forward, backward, Adam) replays to the same losses and parameters as the
    eager steps, and does replay."""
    def run(compiled: bool):
        nx.manual_seed(0)
        model = nx.nn.Sequential(nx.nn.Linear(1, 16), nx.nn.ReLU(), nx.nn.Linear(16, 1))
        opt = nx.optim.Adam(model.parameters(), lr=0.01)

        def step(x):
            opt.zero_grad()
            loss = nx.nn.functional.mse_loss(model(x), x.sin())
            loss.backward()
            opt.step()
            return loss.detach()

        fn = nx.compile(step) if compiled else step
        losses = [fn(nx.linspace(-3, 3 + i, 10).reshape(10, 1)) for i in range(4)]
        return losses + [p.detach() for p in model.parameters()], fn

    (got, fn), (want, _) = run(True), run(False)
    _close(got, want, "training step")
    assert fn.stats["replays"] >= 2, fn.stats


def _run_optimizer(make, dev, dtype, steps=3):
    rng = np.random.default_rng(0)
    init = [rng.standard_normal((3, 2)).astype(dtype), rng.standard_normal(2).astype(dtype)]
    grads = [[rng.standard_normal(p.shape).astype(dtype) for p in init] for _ in range(steps)]
    params = [nx.Tensor(p, device=dev, requires_grad=True) for p in init]
    opt = make(params)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = nx.Tensor(g, device=dev)
        opt.step()
    return [p.numpy() for p in params], init, grads


OPTIMIZERS = {
    "sgd": (lambda ps: nx.optim.SGD(ps, lr=0.1), lambda i, g: reference.sgd(i, g, 0.1)),
    "sgd_momentum_wd": (lambda ps: nx.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
                        lambda i, g: reference.sgd(i, g, 0.1, 0.9, 0.1, 0.01)),
    "sgd_nesterov": (lambda ps: nx.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
                     lambda i, g: reference.sgd(i, g, 0.1, 0.9, nesterov=True)),
    "adam": (lambda ps: nx.optim.Adam(ps, lr=0.01, weight_decay=0.1),
             lambda i, g: reference.adam(i, g, 0.01, weight_decay=0.1)),
    "adamw": (lambda ps: nx.optim.AdamW(ps, lr=0.01, betas=(0.8, 0.99)),
              lambda i, g: reference.adam(i, g, 0.01, 0.8, 0.99, weight_decay=1e-2, decoupled=True)),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_steps(name, conformance_device):
    """The optimizers' (possibly fused) step kernels follow the published update rules."""
    dtype = "float64" if "float64" in _supported(conformance_device) else "float32"
    make, ref = OPTIMIZERS[name]
    got, init, grads = _run_optimizer(make, conformance_device, dtype)
    for g, w in zip(got, ref(init, grads)):
        np.testing.assert_allclose(g, w, **TOLERANCE[dtype])


def test_mlp_training_step(conformance_device):
    """A 1-40-40-1 MLP: loss, gradients and an Adam step match the cpu device."""
    def run(dev):
        nx.manual_seed(0)
        model = nx.nn.Sequential(nx.nn.Linear(1, 40), nx.nn.ReLU(), nx.nn.Linear(40, 40), nx.nn.ReLU(),
                                 nx.nn.Linear(40, 1)).to(dev)
        opt = nx.optim.Adam(model.parameters(), lr=0.01)
        x = nx.linspace(-3, 3, 10, device=dev).reshape(10, 1)
        losses = []
        for _ in range(3):
            opt.zero_grad()
            loss = nx.nn.functional.mse_loss(model(x), x.sin())
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses, [p.numpy() for p in model.parameters()]
    got, want = run(conformance_device), run(nx.Device("cpu"))
    np.testing.assert_allclose(got[0], want[0], rtol=1e-4)
    for g, w in zip(got[1], want[1]):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_unfold_fold_are_adjoint(conformance_device):
    """<unfold(x), y> == <x, fold(y)>: the two kernels are transposes of each other."""
    dtype = "float64" if "float64" in _supported(conformance_device) else "float32"
    rng = np.random.default_rng(0)
    x = nx.Tensor(rng.standard_normal((2, 3, 6, 5)).astype(dtype), device=conformance_device)
    y = nx.Tensor(rng.standard_normal((2, 3 * 9, 3 * 3)).astype(dtype), device=conformance_device)
    lhs = (nx.nn.functional.unfold(x, 3, dilation=1, padding=1, stride=2) * y).sum().item()
    rhs = (x * nx.nn.functional.fold(y, (6, 5), 3, dilation=1, padding=1, stride=2)).sum().item()
    assert abs(lhs - rhs) <= 1e-4 * max(1.0, abs(lhs))


def test_unfold_batch_is_unfold_side_by_side(conformance_device):
    """unfold_batch's columns are unfold's with the images side by side, and fold_batch is its adjoint."""
    from ..ops import fold_batch, unfold_batch

    dtype = "float64" if "float64" in _supported(conformance_device) else "float32"
    rng = np.random.default_rng(0)
    x = nx.Tensor(rng.standard_normal((2, 3, 6, 5)).astype(dtype), device=conformance_device)
    y = nx.Tensor(rng.standard_normal((3 * 9, 2 * 3 * 3)).astype(dtype), device=conformance_device)
    cols = unfold_batch(x, 3, dilation=1, padding=1, stride=2)
    want = nx.nn.functional.unfold(x, 3, dilation=1, padding=1, stride=2).numpy()
    np.testing.assert_array_equal(cols.numpy(), want.transpose(1, 0, 2).reshape(27, 18))
    lhs = (cols * y).sum().item()
    rhs = (x * fold_batch(y, (6, 5), 3, dilation=1, padding=1, stride=2)).sum().item()
    assert abs(lhs - rhs) <= 1e-4 * max(1.0, abs(lhs))


def test_index_put_repeated_indices_add_up(conformance_device):
    x = nx.zeros(4, device=conformance_device)
    idx = nx.Tensor([1, 1, 3, 1], device=conformance_device)
    out = x.index_put((idx,), nx.ones(4, device=conformance_device), accumulate=True)
    assert out.numpy().tolist() == [0.0, 3.0, 0.0, 1.0]


def test_deepcopy_and_pickle(conformance_device):
    """Modules deep-copy (as meta-learners clone them) and tensors pickle, staying on the device."""
    import copy
    import pickle

    model = nx.nn.Sequential(nx.nn.Linear(3, 2), nx.nn.BatchNorm1d(2)).to(conformance_device)
    twin = copy.deepcopy(model)
    for a, b in zip(model.parameters(), twin.parameters()):
        assert b is not a and b.device == a.device and b.requires_grad
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    t = nx.tensor([[1.5, -2.0]], device=conformance_device, requires_grad=True)
    u = pickle.loads(pickle.dumps(t))
    assert u.device == t.device and u.requires_grad
    np.testing.assert_array_equal(u.numpy(), t.numpy())


def _rows(dev):
    return nx.Tensor(np.arange(12.0, dtype=np.float32).reshape(3, 4), device=dev)


def _index(values, dev):
    return nx.Tensor(np.array(values, np.int64), device=dev)


# each an op given an index beyond its axis (3 rows, 4 columns, 3 classes), on the device
OUT_OF_RANGE = {
    "getitem_row": lambda dev: _rows(dev)[_index([0, 3], dev)],
    "getitem_negative": lambda dev: _rows(dev)[_index([-4], dev)],
    "getitem_column": lambda dev: _rows(dev)[:, _index([1, 4], dev)],
    "gather": lambda dev: _rows(dev).gather(1, _index([[0, 4], [1, 0], [3, 2]], dev)),
    "index_put": lambda dev: _rows(dev).index_put((_index([1, 3], dev),), nx.zeros(4, device=dev)),
    "index_put_accumulate": lambda dev: _rows(dev).index_put((_index([-5], dev),), nx.ones(4, device=dev),
                                                              accumulate=True),
    "setitem": lambda dev: _rows(dev).__setitem__(_index([5], dev), 1.0),
    "cross_entropy": lambda dev: nx.nn.functional.cross_entropy(_rows(dev)[:, :3], _index([0, 3, 1], dev)),
    "cross_entropy_negative": lambda dev: nx.nn.functional.cross_entropy(_rows(dev)[:, :3], _index([0, -1, 1], dev)),
    "nll_loss": lambda dev: nx.nn.functional.nll_loss(_rows(dev)[:, :3], _index([2, 0, 7], dev)),
    "one_hot": lambda dev: nx.nn.functional.one_hot(_index([0, 3], dev), 3),
}


@pytest.mark.parametrize("op", OUT_OF_RANGE)
def test_index_out_of_range_raises(op, conformance_device):
    """An index beyond its axis (or a class label beyond the classes) raises IndexError, never reads or
    writes elsewhere: at the op on the host (``cpu``); a device may check on the device and report it at
    the latest at the next read of any tensor from that device (as CUDA's device-side asserts). The error
    is reported once: the device computes correctly afterwards."""
    dev = conformance_device
    if dev.type == "cpu":
        with pytest.raises(IndexError):
            OUT_OF_RANGE[op](dev)
    else:
        with pytest.raises(IndexError):
            OUT_OF_RANGE[op](dev)
            nx.zeros(1, device=dev).numpy()  # the next read from the device reports a deferred check
    np.testing.assert_array_equal((_rows(dev) * 2).numpy(), np.arange(12.0).reshape(3, 4) * 2)


def _float_dtype(dev) -> str:
    return "float32" if "float32" in _supported(dev) else "float64"


def _thread_ops(dev, seed: int) -> list:
    """A stream of small ops with a read after each step, so that one thread's reads interleave with the
    other's recording: elementwise, reductions, a product, indexing, concatenation."""
    rng = np.random.default_rng(seed)
    dtype = _float_dtype(dev)
    out = []
    for _ in range(40):
        a = nx.Tensor(rng.standard_normal((6, 10)).astype(dtype), device=dev)
        b = nx.Tensor(rng.standard_normal((5, 10)).astype(dtype), device=dev)
        y = (a @ b.T).relu() + a.sum(1, keepdim=True) * 0.5
        y = nx.cat([y[_index([4, 0, 2], dev)], y.amax(0, keepdim=True)], 0)
        out.append(y.softmax(1).numpy())
    return out


def _thread_training(dev, seed: int) -> list:
    """Second-order MAML steps on a small MLP (an inner step with create_graph, an Adam meta-step), written
    with core's API; its parameters come from NumPy, not from neurenix's shared generator."""
    rng = np.random.default_rng(seed)
    dtype = _float_dtype(dev)
    shapes = [(16, 1), (16,), (16, 16), (16,), (1, 16), (1,)]
    params = [nx.Tensor((rng.standard_normal(s) * 0.5).astype(dtype), device=dev, requires_grad=True)
              for s in shapes]
    opt = nx.optim.Adam(params, lr=0.01)
    linear, mse = nx.nn.functional.linear, nx.nn.functional.mse_loss

    def net(ps, x):
        h = linear(x, ps[0], ps[1]).relu()
        h = linear(h, ps[2], ps[3]).relu()
        return linear(h, ps[4], ps[5])
    losses = []
    for _ in range(6):
        xs, xq = (nx.Tensor(rng.uniform(-3, 3, (10, 1)).astype(dtype), device=dev) for _ in range(2))
        opt.zero_grad()
        grads = autograd_grad(mse(net(params, xs), xs.sin()), params, create_graph=True)
        loss = mse(net([p - 0.05 * g for p, g in zip(params, grads)], xq), xq.sin())
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return [np.array(losses)] + [p.numpy() for p in params]


def _concurrently(jobs) -> list:
    """Run ``jobs`` (callables) in threads started together; their results, or the first exception."""
    results, errors = [None] * len(jobs), []
    start = threading.Barrier(len(jobs))

    def run(i):
        try:
            start.wait()
            results[i] = jobs[i]()
        except BaseException as e:  # re-raised in the calling thread
            errors.append(e)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize("work", [_thread_ops, _thread_training], ids=["ops", "training"])
def test_two_threads_match_sequential(work, conformance_device):
    """Two threads using the device at once (ops with a read each step; second-order training) get exactly
    the results of running the same work one after the other: no lost, reordered or mixed-up work."""
    dev = conformance_device
    want = [work(dev, seed) for seed in (1, 2)]
    for _ in range(2):
        got = _concurrently([lambda s=seed: work(dev, s) for seed in (1, 2)])
        for g, w in zip(got, want):
            for a, b in zip(g, w):
                np.testing.assert_array_equal(a, b)
