"""The plugin machinery: run-time registration, priorities, composed kernels, isolation of broken
plugins, NEURENIX_REQUIRE_BACKENDS, and a per-op path that never calls a hook.

Plugins here are small objects registered at run time (no distribution needs to be installed); the
``plug`` fixture unregisters them after each test.
"""

from __future__ import annotations

import contextlib
import copy
import re
from dataclasses import dataclass

import numpy as np
import pytest

import neurenix as nx
from neurenix.backend import OPTIONAL, REQUIRED, Backend, hookimpl, list_backends, numpy_backend, registry
from neurenix.errors import BackendError, DeviceError
from neurenix.testing import reference
from neurenix.testing.conformance import _run_optimizer

NUMPY_REQUIRED = {name: numpy_backend.KERNELS[name] for name in REQUIRED}


def _value(v):
    """``v``, or raise it if it is an exception (how a fake backend or plugin is told to fail)."""
    if isinstance(v, Exception):
        raise v
    return v


class FakeBackend(Backend):
    """A backend for tests: NumPy kernels (or ``kernels``) on a device type of the test's choosing.

    ``reason``, ``kernels`` and ``count`` may be exceptions, raised by the matching method; ``calls``
    counts the calls to its methods.
    """

    def __init__(self, device_type, name=None, priority=0, kernels=NUMPY_REQUIRED, count=1, reason=None,
                 api_version=Backend.api_version):
        self.device_type, self.name, self.priority = device_type, name or device_type, priority
        self.api_version = api_version
        self._kernels, self._count, self._reason = kernels, count, reason
        self.calls = 0

    def unavailable_reason(self):
        self.calls += 1
        return _value(self._reason)

    def device_count(self):
        self.calls += 1
        return _value(self._count)

    def device_name(self, index):
        return f"fake device {index}"

    def kernels(self):
        self.calls += 1
        return _value(self._kernels)


class Plugin:
    """A plugin object whose ``neurenix_backends`` hook returns ``backends`` (or raises ``error``)."""

    def __init__(self, *backends, error=None):
        self.backends, self.error, self.calls = list(backends), error, 0

    @hookimpl
    def neurenix_backends(self):
        self.calls += 1
        return _value(self.error) if self.error else self.backends


@pytest.fixture
def plug():
    """``plug(plugin)`` registers a plugin (as "test-plugin-N") for the test's duration and returns it."""
    plugins = []

    def register(plugin):
        plugins.append(plugin)  # before registering: a plugin whose hook fails stays registered
        nx.backend.register(plugin, f"test-plugin-{len(plugins)}")
        return plugin

    yield register
    for plugin in plugins:
        with contextlib.suppress(ValueError):  # unless the test unregistered it
            nx.backend.unregister(plugin)


def _statuses(name):
    return [s for s in list_backends() if s.name == name]


# -- run-time registration of a new device type -----------------------------------------------------
def test_runtime_plugin_adds_a_device_type(plug):
    plugin = plug(Plugin(FakeBackend("rtnew", count=2)))
    dev = nx.Device("rtnew:1")
    assert (dev.type, dev.index, str(dev)) == ("rtnew", 1, "rtnew:1")
    assert nx.get_device_count("rtnew") == 2
    x = nx.tensor([1.0, 2.0], device=dev)
    assert (x + x).device is dev and (x + x).tolist() == [2.0, 4.0]
    (status,) = _statuses("rtnew")
    assert (status.device_type, status.plugin, status.distribution, status.available, status.reason) == \
        ("rtnew", "test-plugin-1", None, True, None)
    assert status.devices == ["rtnew:0 fake device 0", "rtnew:1 fake device 1"]
    assert "2 device(s)" in str(status)

    nx.backend.unregister(plugin)
    assert _statuses("rtnew") == []
    assert nx.get_device_count("rtnew") == 0
    assert "no plugin provides it" in dev.kernels.reason
    with pytest.raises(DeviceError, match="no rtnew device can be used here: .*no plugin provides it"):
        nx.ones(2, device=dev)


@pytest.mark.parametrize("device_type", ["cpu", "rtnone"])
def test_kernel_table_attributes(device_type):
    table = registry.REGISTRY.table(device_type)  # "rtnone": a table no plugin provides
    assert not hasattr(table, "no_such_kernel")
    assert copy.copy(table).reason == table.reason
    if table.reason is None:
        assert callable(table.add) and callable(table.softmax)
    else:
        # the device and the reason, not the kernel's name (an internal one, 'from_numpy', for nx.tensor)
        with pytest.raises(DeviceError, match="no rtnone device can be used here: .*no plugin provides it") as e:
            table.add(1, 2)
        assert "'add'" not in str(e.value)


def test_unregister_unknown_plugin_raises():
    with pytest.raises(ValueError, match="not a registered"):
        nx.backend.unregister(Plugin())


# -- priorities -------------------------------------------------------------------------------------
def test_higher_priority_backend_overrides_one_kernel(plug):
    calls = []

    def exp(x):
        calls.append(x.shape)
        return np.exp(x)

    table = nx.Device("cpu").kernels
    before = dict(table.providers)  # "numpy", unless a faster cpu backend is installed
    plugin = plug(Plugin(FakeBackend("cpu", "fast-exp", priority=100, kernels={"exp": exp})))
    assert table.providers == {**before, "exp": "fast-exp"}
    assert table.exp is exp
    a = np.linspace(-2, 2, 5)
    np.testing.assert_allclose((nx.tensor(a).exp() + 1).numpy(), np.exp(a) + 1)
    assert calls == [(5,)]

    nx.backend.unregister(plugin)
    assert table.providers == before
    assert table.exp is not exp
    np.testing.assert_allclose(nx.tensor(a).exp().numpy(), np.exp(a))
    assert calls == [(5,)]


def test_lower_priority_backend_does_not_override(plug):
    plug(Plugin(FakeBackend("cpu", "slow-exp", priority=-1, kernels={"exp": lambda x: pytest.fail("called")})))
    table = nx.Device("cpu").kernels
    assert table.providers["exp"] != "slow-exp"
    assert nx.tensor([0.0]).exp().item() == 1.0


def test_fallback_is_numpy_for_a_fresh_registry(monkeypatch):
    monkeypatch.setattr(registry.importlib.metadata, "entry_points", lambda group: [])
    table = registry._Registry().table("cpu")
    assert set(table.providers.values()) == {"numpy", "core (composed)"}
    assert all(table.providers[k] == "numpy" for k in REQUIRED)
    assert table.exp is numpy_backend.KERNELS["exp"]


# -- optional kernels composed by core --------------------------------------------------------------
@pytest.fixture
def composed(plug):
    """A device type whose backend provides only the required kernels."""
    plug(Plugin(FakeBackend("rtcomposed")))
    return nx.Device("rtcomposed")


def test_missing_optional_kernels_are_composed(composed):
    providers = composed.kernels.providers
    assert {providers[k] for k in OPTIONAL} == {"core (composed)"}
    assert {providers[k] for k in REQUIRED} == {"rtcomposed"}


def _softmax(a, axis):
    e = np.exp(a - a.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


@pytest.mark.parametrize("kernel, ref", [  # the fake device's buffers are NumPy arrays: call the kernels on them
    (lambda k, a: k.mean(a, (0, 1, 2), False), lambda a: a.mean()),
    (lambda k, a: k.mean(a, (0, 2), True), lambda a: a.mean((0, 2), keepdims=True)),
    (lambda k, a: k.softmax(a, 1), lambda a: _softmax(a, 1)),
    (lambda k, a: k.log_softmax(a, 2), lambda a: np.log(_softmax(a, 2))),
    (lambda k, a: k.relu_backward(a + 100, a), lambda a: np.where(a > 0, a + 100, 0)),
], ids=["mean", "mean_axes_keepdim", "softmax", "log_softmax", "relu_backward"])
def test_composed_kernels_compute_correct_values(composed, kernel, ref):
    a = np.random.default_rng(0).standard_normal((3, 4, 5)) * 10
    np.testing.assert_allclose(kernel(composed.kernels, a), ref(a), rtol=1e-12, atol=1e-12)


def test_ops_run_on_composed_kernels(composed):
    a = np.array([[-1.5, 0.0, 2.0], [3.0, 1.0, -2.0]])
    x = nx.tensor(a, device=composed, requires_grad=True)
    (nx.softmax(x, dim=1) + x.relu() + x.mean(dim=0)).sum().backward()  # softmax rows sum to 1: gradient 0
    np.testing.assert_allclose(x.grad.numpy(), (a > 0) + 1.0, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make, ref", [
    (lambda ps: nx.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
     lambda i, g: reference.sgd(i, g, 0.1, 0.9, 0.1, 0.01)),
    (lambda ps: nx.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
     lambda i, g: reference.sgd(i, g, 0.1, 0.9, nesterov=True)),
    (lambda ps: nx.optim.Adam(ps, lr=0.01, weight_decay=0.1),
     lambda i, g: reference.adam(i, g, 0.01, weight_decay=0.1)),
    (lambda ps: nx.optim.AdamW(ps, lr=0.01),
     lambda i, g: reference.adam(i, g, 0.01, weight_decay=1e-2, decoupled=True)),
], ids=["sgd_step", "sgd_step_nesterov", "adam_step", "adam_step_decoupled"])
def test_composed_optimizer_steps(composed, make, ref):
    got, init, grads = _run_optimizer(make, nx.Device(composed), "float64")
    for g, want in zip(got, ref(init, grads)):
        np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-12)


# -- isolation: a broken plugin or backend is reported, and breaks nothing else ----------------------
def _broken_cpu(**kwargs):
    """A plugin with a broken cpu backend that would otherwise win every kernel (priority 100)."""
    return Plugin(FakeBackend("cpu", "broken", 100, **kwargs))


class MisspelledHook:
    @hookimpl
    def neurenix_backend(self):  # the hook is neurenix_backends
        return [FakeBackend("cpu", "broken", 100)]


class UnmarkedHook:
    def neurenix_backends(self):  # no @hookimpl
        return [FakeBackend("cpu", "broken", 100)]


BROKEN = {  # case -> (make the plugin, does register() raise, the reason reported)
    "misspelled_hook": (MisspelledHook, True, r"unknown hook 'neurenix_backend'"),
    "unmarked_hook": (UnmarkedHook, True, r"neurenix_backends is not decorated with @neurenix.backend.hookimpl"),
    "no_hook": (object, True, r"it has no neurenix_backends hook"),
    "hook_raises": (lambda: Plugin(error=RuntimeError("hook exploded")), True,
                    r"failed: RuntimeError\('hook exploded'\)"),
    "not_a_backend": (lambda: Plugin("cpu"), True, r"returned 'cpu', not a Backend"),
    "probe_raises": (lambda: _broken_cpu(reason=OSError("no driver")), False,
                     r"availability check raised OSError\('no driver'\)"),
    "unavailable": (lambda: _broken_cpu(reason="no adapter found"), False, "^no adapter found$"),
    "wrong_api_version": (lambda: _broken_cpu(api_version=999), False,
                          r"implements kernel API 999, but this neurenix supports versions 1, 2: set api_version = 2"),
    "kernels_raise": (lambda: _broken_cpu(kernels=KeyError("exp")), False, r"KeyError\('exp'\)"),
    "device_count_raises": (lambda: _broken_cpu(count=OSError("bus")), False, r"OSError\('bus'\)"),
    "missing_required_kernels": (lambda: Plugin(FakeBackend("rtpartial", "broken", kernels={"add": np.add})), False,
                                 "lack required kernels: from_numpy, to_numpy, full, copy"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_broken_plugin_is_reported_and_isolated(case, plug):
    make, raises, reason = BROKEN[case]
    healthy = plug(Plugin(FakeBackend("rthealthy", count=2)))
    if raises:
        with pytest.raises(BackendError, match=reason):
            plug(make())
        (status,) = [s for s in list_backends() if s.plugin == "test-plugin-2"]
    else:
        plug(make())
        (status,) = _statuses("broken")
    assert not status.available and status.devices == []
    assert status.reason and re.search(reason, status.reason), status.reason
    assert str(status).endswith(f"unusable: {status.reason}")

    # the other backends are untouched: cpu still runs on the backends it had, so does a healthy new type
    assert "broken" not in nx.Device("cpu").kernels.providers.values()
    assert (nx.ones(3) + nx.ones(3)).tolist() == [2.0, 2.0, 2.0]
    assert nx.get_device_count("rthealthy") == 2
    assert nx.ones(2, device="rthealthy:1").sum().item() == 2.0
    assert healthy.calls == 1  # its hook ran once, when it was registered
    if case == "missing_required_kernels":
        assert nx.get_device_count("rtpartial") == 0
        with pytest.raises(DeviceError, match="rtpartial.*lack required kernels"):
            nx.ones(2, device="rtpartial")


# -- plugins from entry points, and NEURENIX_REQUIRE_BACKENDS (on a fresh registry) ------------------
@dataclass
class EntryPoint:
    """What the registry uses of an importlib.metadata.EntryPoint; ``load`` returns or raises ``plugin``."""

    name: str
    plugin: object
    value: str = "some_plugin.module"
    dist: object = None

    def load(self):
        return _value(self.plugin)


OFFLINE = FakeBackend("rtoffline", "offline-gpu", reason="no adapter found")


@pytest.fixture
def fresh(monkeypatch):
    """``fresh(*entry_points, require="")``: a new registry loading those entry points, with that
    NEURENIX_REQUIRE_BACKENDS."""
    def make(*eps, require=""):
        monkeypatch.setattr(registry.importlib.metadata, "entry_points", lambda group: list(eps))
        monkeypatch.setenv("NEURENIX_REQUIRE_BACKENDS", require)
        reg = registry._Registry()
        reg.load()
        return reg
    return make


BROKEN_EP = EntryPoint("broken", ModuleNotFoundError("No module named 'some_plugin'"))
GOOD_EP = EntryPoint("good", Plugin(FakeBackend("rtgood", count=3)))


def test_broken_entry_point_is_recorded_and_skipped(fresh):
    reg = fresh(BROKEN_EP, GOOD_EP, EntryPoint("offline", Plugin(OFFLINE)))
    by_plugin = {s.plugin: s for s in reg.statuses()}
    assert set(by_plugin) == {"numpy", "broken", "good", "offline"}
    broken = by_plugin["broken"]
    assert not broken.available
    assert "import of 'some_plugin.module' failed" in broken.reason and "No module named 'some_plugin'" in broken.reason
    assert by_plugin["good"].available and len(by_plugin["good"].devices) == 3
    assert (by_plugin["offline"].available, by_plugin["offline"].reason) == (False, "no adapter found")
    assert reg.table("rtgood").reason is None and reg.table("cpu").reason is None
    assert reg.table("rtoffline").reason == "offline-gpu: no adapter found"


@pytest.mark.parametrize("require", ["cpu", "numpy", " cpu , rtgood ", "good-backend"])
def test_require_backends_usable(fresh, require):
    fresh(BROKEN_EP, EntryPoint("good", Plugin(FakeBackend("rtgood", "good-backend"))), require=require)


@pytest.mark.parametrize("require, message", [
    ("webgpu", "names 'webgpu', but no installed backend provides it"),
    ("cpu,rtoffline", "names 'rtoffline', but it cannot run: offline-gpu: no adapter found"),
    ("offline-gpu", "names 'offline-gpu', but it cannot run: .*no adapter found"),
    ("broken", "names 'broken', but its plugin failed: import of 'some_plugin.module' failed: "
               "ModuleNotFoundError.*No module named 'some_plugin'"),
])
def test_require_backends_missing_or_unusable(fresh, require, message):
    with pytest.raises(BackendError, match=message):
        fresh(BROKEN_EP, EntryPoint("offline", Plugin(OFFLINE)), require=require)


def test_require_backends_names_an_unusable_backend_of_a_usable_type(fresh):
    """cpu runs on NumPy, but the backend named must run itself."""
    ep = EntryPoint("cpu-fast", Plugin(FakeBackend("cpu", "cpu-fast", 10, reason="built without AVX")))
    assert fresh(ep).table("cpu").reason is None
    with pytest.raises(BackendError, match="names 'cpu-fast', but it cannot run: built without AVX"):
        fresh(ep, require="cpu-fast")


# -- the per-op path never calls a hook ---------------------------------------------------------------
def test_ops_do_not_call_hooks(plug, monkeypatch):
    backend = FakeBackend("rthot")
    plugin = plug(Plugin(backend))
    dev = nx.Device("rthot")
    x, y = nx.ones((4, 3), device=dev, requires_grad=True), nx.ones((4, 3), requires_grad=True)

    hook_calls = []
    for impl in registry.REGISTRY.pm.hook.neurenix_backends.get_hookimpls():
        def counted(fn=impl.function, name=impl.plugin_name):
            hook_calls.append(name)
            return fn()
        monkeypatch.setattr(impl, "function", counted)
    before = (plugin.calls, backend.calls)
    assert plugin.calls == 1 and backend.calls >= 2  # the counters work: hook at registration, then probe, kernels

    for t in (x, y):
        for _ in range(20):
            loss = (nx.softmax(t * 2 + 1, dim=1).exp().mean(dim=0) - t.sum()).sum()
            loss.backward()
        nx.optim.Adam([t]).step()
        assert t.to("cpu").to(dev).device is dev
    assert nx.get_device_count("rthot") == 1 and nx.Device("rthot:0") is dev
    assert hook_calls == [] and (plugin.calls, backend.calls) == before


# -- threads ----------------------------------------------------------------------------------------
class ThreadedBackend(FakeBackend):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.threads = []

    def set_num_threads(self, n):
        self.threads.append(n)


def test_set_num_threads_reaches_every_usable_backend_in_use(plug):
    before = registry.REGISTRY.num_threads
    try:
        registry.REGISTRY.num_threads = None  # as if never set: a new backend is told nothing yet
        now = plug(Plugin(ThreadedBackend("rtthreads"), ThreadedBackend("rtthreads2", reason="no device")))
        nx.set_num_threads(3)
        # not probed for it: telling a backend its thread count must not load its driver before its first use
        assert now.backends[0].threads == [] and now.backends[0].calls == 0
        later = plug(Plugin(ThreadedBackend("rtthreads3")))  # a backend loaded afterwards is told too
        for t in ("rtthreads", "rtthreads2", "rtthreads3"):
            nx.get_device_count(t)  # first use
        assert (now.backends[0].threads, now.backends[1].threads, later.backends[0].threads) == ([3], [], [3])
        nx.set_num_threads(2)  # in use now: told at once
        assert (now.backends[0].threads, now.backends[1].threads) == ([3, 2], [])
        assert nx.get_num_threads() == 2
        for bad in (0, -1, 1.5, True):
            with pytest.raises(ValueError, match="positive int"):
                nx.set_num_threads(bad)
    finally:
        registry.REGISTRY.num_threads = before


def test_get_num_threads_defaults_to_omp_num_threads(monkeypatch):
    monkeypatch.setattr(registry.REGISTRY, "num_threads", None)
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert nx.get_num_threads() == 5
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert nx.get_num_threads() >= 1


def test_a_version_1_backend_keeps_working(plug):
    """Contract v1 required 45 kernels, a superset of v2's: such a backend is used as it is, its kernels
    (neg, sub, abs... now optional) preferred to core's compositions."""
    plug(Plugin(FakeBackend("rtv1", "v1", kernels=dict(numpy_backend.KERNELS), api_version=1)))
    assert nx.backend.kernel_providers("rtv1")["neg"] == ["v1"]
    x = nx.tensor([-1.5, 2.0], device="rtv1")
    np.testing.assert_array_equal((x - x.abs()).numpy(), [-3.0, 0.0])


def test_unknown_device_type_names_what_is_installed_and_what_failed(plug):
    with pytest.raises(BackendError):
        plug(MisspelledHook())
    with pytest.raises(DeviceError) as e:
        nx.Device("mydev")
    message = str(e.value)
    assert "installed device types: cpu" in message and "mydev" in message
    assert "failed to load" in message and "unknown hook 'neurenix_backend'" in message


# -- device="auto" --------------------------------------------------------------------------------------
class Preferring(FakeBackend):
    """A FakeBackend whose devices declare ``ranks`` (index -> preference; an exception is raised)."""

    def __init__(self, device_type, ranks, **kw):
        super().__init__(device_type, count=len(ranks), **kw)
        self.ranks = ranks

    def preference(self, index):
        return _value(self.ranks[index])


def test_auto_picks_the_device_its_backend_prefers_most(plug):
    assert nx.Device("auto") is nx.Device("cpu")  # nothing else installed here prefers itself to the CPU
    plug(Plugin(Preferring("rtauto", [5, 70])))
    assert nx.Device("auto") is nx.Device("rtauto:1")
    assert nx.init({"device": "auto"}) is nx.Device("rtauto:1") and nx.default_device() is nx.Device("rtauto:1")
    nx.init({"device": "cpu"})
    assert nx.tensor([1.0], device="auto").device is nx.Device("rtauto:1")
    assert registry.REGISTRY.ranking()[0] == ("rtauto:1", 70, "rtauto")
    assert 'device="auto" picks rtauto:1' in nx.backend.describe()
    with pytest.raises(DeviceError, match="'auto' picks its index itself"):
        nx.Device("auto", 1)


@pytest.mark.parametrize("ranks", [[0], [ValueError("broken")], [-3]])
def test_auto_never_picks_a_device_that_does_not_opt_in(plug, ranks):
    """0 (the default), a preference that raises, or a negative one: the CPU is picked instead."""
    plug(Plugin(Preferring("rtshy", ranks)))
    assert nx.Device("auto") is nx.Device("cpu")
    assert ("rtshy:0", 0 if not isinstance(ranks[0], int) or ranks[0] >= 0 else ranks[0], "rtshy") \
        in registry.REGISTRY.ranking()


def test_auto_skips_unusable_devices(plug):
    plug(Plugin(Preferring("rtdown", [90], reason="no driver")))
    assert nx.Device("auto") is nx.Device("cpu")
    assert all(name != "rtdown:0" for name, _, _ in registry.REGISTRY.ranking())


@pytest.mark.parametrize("module", ["cuda", "rocm", "webgpu"])
def test_device_type_modules_answer_is_available(module):
    mod = getattr(nx, module)
    assert mod.is_available() == (nx.get_device_count(module) > 0) and mod.device_count() == \
        nx.get_device_count(module)
