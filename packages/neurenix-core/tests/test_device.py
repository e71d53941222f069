"""Devices: parsing, interning, errors that say why, the default device and ``neurenix.init``.

Device types other than cpu come from plugins registered at run time (the ``devices`` fixture), so
no backend distribution needs to be installed.
"""

from __future__ import annotations

import numpy as np
import pytest

import neurenix as nx
import neurenix.device as device_module
from neurenix import Device, DeviceError, DeviceType
from neurenix.backend import REQUIRED, Backend, hookimpl, list_backends, numpy_backend


class TwoDevices(Backend):
    """NumPy kernels on a new device type with two devices."""

    device_type = name = "rtdev"

    def device_count(self):
        return 2

    def kernels(self):
        return {k: numpy_backend.KERNELS[k] for k in REQUIRED}


class Offline(Backend):
    device_type = name = "rtoffline"

    def unavailable_reason(self):
        return "no adapter found"


class Plugin:
    @hookimpl
    def neurenix_backends(self):
        return [TwoDevices(), Offline()]


@pytest.fixture(autouse=True)
def keep_default_device(monkeypatch):
    monkeypatch.setattr(device_module, "_default", nx.default_device())


@pytest.fixture
def devices():
    """Device types "rtdev" (two devices) and "rtoffline" (unusable: no adapter found), for one test."""
    plugin = Plugin()
    nx.backend.register(plugin, "test-devices")
    yield
    nx.backend.unregister(plugin)


# -- parsing and identity ---------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["cpu", "cpu:0", Device("cpu"), DeviceType.CPU])
def test_cpu_specs(spec):
    dev = Device(spec)
    assert dev is Device("cpu") and dev is Device("cpu", 0) and dev is Device(Device("cpu"), 0)
    assert (dev.type, dev.index, str(dev), repr(dev)) == ("cpu", 0, "cpu", "device('cpu')")
    assert dev == "cpu" and dev == "cpu:0" and dev != "cpu:1" and dev != "nonsense" and dev != 0
    assert hash(dev) == hash("cpu") and {dev: 1}["cpu"] == 1


def test_device_types():
    assert (DeviceType.CPU, DeviceType.CUDA, DeviceType.ROCM, DeviceType.WEBGPU) == ("cpu", "cuda", "rocm", "webgpu")
    assert repr(DeviceType.CUDA) == "DeviceType.CUDA"
    assert repr(DeviceType("rtdev")) == "DeviceType('rtdev')"
    assert isinstance(Device("cpu").type, DeviceType)


SPELLINGS = {
    "name": lambda: Device("rtdev"), "name:0": lambda: Device("rtdev:0"), "name, 0": lambda: Device("rtdev", 0),
    "type": lambda: Device(DeviceType("rtdev")), "device, 0": lambda: Device(Device("rtdev:1"), 0),
}


@pytest.mark.parametrize("first", SPELLINGS)
def test_one_device_whatever_the_spelling(first, devices, monkeypatch):
    monkeypatch.setattr(Device, "_interned", {})  # nothing interned yet: ``first`` makes the device
    dev = SPELLINGS[first]()
    assert Device(dev) is dev
    for spelling in SPELLINGS.values():
        assert spelling() is dev


def test_runtime_device_type(devices):
    dev = Device("rtdev:1")
    assert dev is Device("rtdev", 1) and dev is Device(Device("rtdev"), 1) and Device(dev) is dev
    assert Device("rtdev") is Device("rtdev:0") is not dev
    assert (str(dev), repr(dev), repr(dev.type)) == ("rtdev:1", "device('rtdev:1')", "DeviceType('rtdev')")
    assert dev == "rtdev:1" and dev != "rtdev:0" and dev != Device("cpu")
    assert nx.get_device_count("rtdev") == nx.get_device_count(DeviceType("rtdev")) == 2
    assert nx.ones(3, device=dev).device is dev


@pytest.mark.parametrize("args, message", [
    (("foo",), r"unknown device type 'foo' in 'foo'; installed device types: cpu, .*webgpu"),
    (("foo:1",), "unknown device type 'foo' in 'foo:1'"),
    (("cpu:x",), "invalid device 'cpu:x': the index after ':' must be a non-negative integer"),
    (("cpu:-1",), "invalid device 'cpu:-1'"),
    (("cpu:",), "invalid device 'cpu:'"),
    (("cpu:\u00b2",), "invalid device 'cpu:\u00b2'"),
    (("cpu", -1), "invalid device index -1 for 'cpu': it must be a non-negative integer"),
    (("cuda", -1), "invalid device index -1"),
    (("cpu", "0"), "invalid device index '0'"),
    (("cpu:0", 0), "device 'cpu:0' already has an index; do not pass index=0 too"),
    (("cpu:1",), "device cpu:1 does not exist: 1 cpu device"),
    (("cpu", 1), "device cpu:1 does not exist: 1 cpu device"),
    (("rtdev:2",), "device rtdev:2 does not exist: 2 rtdev device"),
])
def test_bad_device_specs(args, message, devices):
    with pytest.raises(DeviceError, match=message):
        Device(*args)


def test_not_a_device():
    with pytest.raises(TypeError, match="a device is a string"):
        Device(3)


# -- device types that cannot run here --------------------------------------------------------------
@pytest.mark.parametrize("device_type", ["cuda", "rocm", "webgpu"])
def test_standard_type_without_backend(device_type):
    if any(s.device_type == device_type for s in list_backends()):
        pytest.skip(f"a {device_type} backend is installed here")
    assert nx.get_device_count(device_type) == 0
    dev = Device(device_type)  # a known type: the device exists, but says why it cannot run
    hint = f"no backend for it is installed \\(pip install neurenix-backend-{device_type}\\)"
    assert dev.kernels.reason.startswith("no backend for it is installed")
    with pytest.raises(DeviceError, match=f"no {device_type} device can be used here: {hint}"):
        nx.ones(2, device=device_type)
    with pytest.raises(DeviceError, match=f"device {device_type}:0 cannot run: {hint}"):
        dev.check()
    with pytest.raises(DeviceError, match=hint):
        nx.init({"device": device_type})
    assert nx.default_device() is Device("cpu")


def test_unavailable_backend_says_why(devices):
    assert nx.get_device_count("rtoffline") == 0
    with pytest.raises(DeviceError, match="rtoffline: no adapter found"):
        nx.tensor([1.0], device="rtoffline")
    with pytest.raises(DeviceError, match="no adapter found"):
        nx.ones(2).to("rtoffline")
    with pytest.raises(DeviceError, match="no adapter found"):
        nx.init(device="rtoffline:0")


# -- default device and neurenix.init ----------------------------------------------------------------
def test_init_sets_the_default_device(devices):
    assert nx.init({"device": "rtdev:1"}) is Device("rtdev:1") is nx.default_device()
    x = nx.zeros(2)
    assert x.device is Device("rtdev:1") and nx.randn(2, 3).device is Device("rtdev:1")
    layer = nx.nn.Sequential(nx.nn.Linear(2, 3), nx.nn.BatchNorm1d(3))  # modules land there too
    assert {t.device for t in [*layer.parameters(), *layer.buffers()]} == {Device("rtdev:1")}
    assert nx.init(device="cpu", seed=0) is Device("cpu")
    assert nx.ones(1).device is Device("cpu")


def test_init_with_unknown_keys():
    with pytest.raises(ValueError,
                       match=r"unknown neurenix.init option\(s\) \['colour'\]; known: \['device', 'seed'\]"):
        nx.init({"device": "cpu", "colour": "blue"})
    with pytest.raises(TypeError, match="config must be a dict of settings, got str"):
        nx.init("cpu")
    assert nx.default_device() is Device("cpu")


def test_init_with_unknown_device():
    with pytest.raises(DeviceError, match="unknown device type 'foo'"):
        nx.init(device="foo")


# -- mixing devices ----------------------------------------------------------------------------------
@pytest.mark.parametrize("op", [
    lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a @ b.reshape(3, 1), lambda a, b: nx.maximum(b, a),
    lambda a, b: nx.where(a > 0, a, b), lambda a, b: nx.cat([a, b]),
], ids=["add", "mul", "matmul", "maximum", "where", "cat"])
@pytest.mark.parametrize("other", ["cpu", "rtdev:0"])
def test_mixing_devices_is_an_error(op, other, devices):
    a, b = nx.ones(3, device="rtdev:1"), nx.ones(3, device=other)
    with pytest.raises(DeviceError, match=f"rtdev:1.*{other}|{other}.*rtdev:1"):
        op(a, b)


def test_moving_between_devices(devices):
    a = np.arange(6.0).reshape(2, 3)
    x = nx.tensor(a, requires_grad=True)
    y = x.to("rtdev:1")
    assert y.device is Device("rtdev:1") and y.to("rtdev:1") is y
    z = (y * 2).to("rtdev:0").to(Device("cpu"))
    z.sum().backward()
    np.testing.assert_array_equal(z.numpy(), a * 2)
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 2.0))
    assert x.grad.device is Device("cpu")
