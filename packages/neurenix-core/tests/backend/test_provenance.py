"""Which backend serves each kernel (kernel_providers, ``python -m neurenix --kernels``), and the opt-in
checking of kernel results against the contract (NEURENIX_CHECK_KERNELS, backend/checking.py)."""

import numpy as np
import pytest

import neurenix as nx
from neurenix.__main__ import main
from neurenix.backend import Backend, hookimpl, kernel_providers, numpy_backend
from neurenix.backend.kernels import REQUIRED
from neurenix.errors import BackendError


class OneKernel(Backend):
    """A backend of ``device_type`` offering the NumPy kernels (all required ones, or only ``only``)."""

    def __init__(self, device_type, name, priority, overrides):
        self.device_type, self.name, self.priority, self._overrides = device_type, name, priority, overrides

    def kernels(self):
        return self._overrides


class Plugin:
    def __init__(self, *backends):
        self.backends = backends

    @hookimpl
    def neurenix_backends(self):
        return list(self.backends)


@pytest.fixture
def plug():
    plugins = []

    def register(*backends):
        plugins.append(Plugin(*backends))
        nx.backend.register(plugins[-1], f"test-provenance-{len(plugins)}")

    yield register
    for p in plugins:
        nx.backend.unregister(p)


def _wrong_dtype_add(a, b):
    return np.add(a, b).astype(np.float64)  # float32 in, float64 out: against the contract


def test_an_override_of_a_cpu_kernel_is_visible(plug, capsys):
    plug(OneKernel("cpu", "fast-add", 100, {"add": np.add}))
    providers = kernel_providers("cpu")
    assert providers["add"][0] == "fast-add" and len(providers["add"]) > 1  # it overrides another's add
    assert providers["neg"][0] != "fast-add"
    main(["--kernels"])
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("fast-add"))
    assert "add*" in line


def test_composed_kernels_are_named_and_unusable_types_are_empty(plug):
    plug(OneKernel("provtest", "prov", 0, {n: numpy_backend.KERNELS[n] for n in REQUIRED}))
    providers = kernel_providers("provtest")
    assert providers["add"] == ["prov"]
    assert providers["adam_step"] == ["core (composed)"]
    assert kernel_providers("cuda") == {} or nx.get_device_count("cuda")


def test_checking_is_off_by_default(plug, monkeypatch):
    monkeypatch.delenv("NEURENIX_CHECK_KERNELS", raising=False)
    plug(OneKernel("wrongtype", "wrong", 0, {**{n: numpy_backend.KERNELS[n] for n in REQUIRED},
                                             "add": _wrong_dtype_add}))
    assert nx.Device("wrongtype").kernels.add is _wrong_dtype_add  # nothing wrapped: no cost


@pytest.mark.parametrize("setting", ["1", "yes"])
def test_checking_names_the_kernel_and_both_results(plug, monkeypatch, setting):
    monkeypatch.setenv("NEURENIX_CHECK_KERNELS", setting)
    plug(OneKernel("wrongtype", "wrong", 0, {**{n: numpy_backend.KERNELS[n] for n in REQUIRED},
                                             "add": _wrong_dtype_add}))
    a = nx.ones(3, device="wrongtype")
    np.testing.assert_array_equal((a * 2).numpy(), [2.0, 2.0, 2.0])  # mul keeps the contract
    with pytest.raises(BackendError, match=r"kernel 'add' of backend 'wrong' returned \(\(3,\), 'float64'\).*"
                                           r"gives \(\(3,\), 'float32'\)"):
        a + a


def test_checking_passes_a_conforming_backend(plug, monkeypatch):
    monkeypatch.setenv("NEURENIX_CHECK_KERNELS", "1")
    plug(OneKernel("goodtype", "good", 0, dict(numpy_backend.KERNELS)))
    x = nx.randn(2, 3, device="goodtype", requires_grad=True)
    loss = nx.nn.functional.cross_entropy(x, nx.tensor([0, 2], device="goodtype"))
    loss.backward()
    assert x.grad.shape == (2, 3)


def test_listing_names_a_required_backend_that_cannot_run_without_a_traceback():
    import os
    import subprocess
    import sys

    env = dict(os.environ, NEURENIX_REQUIRE_BACKENDS="nosuchdevice")
    out = subprocess.run([sys.executable, "-m", "neurenix", "--list"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 1
    assert "installed backends" in out.stdout and "numpy" in out.stdout
    assert "error: NEURENIX_REQUIRE_BACKENDS names 'nosuchdevice'" in out.stderr
    assert "Traceback" not in out.stderr
