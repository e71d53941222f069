"""A backend that provides only the required kernels of contract v2 (core's NumPy ones, on a device type of its
own) passes the whole conformance suite: every optional kernel is then core's composition."""

import pytest

import neurenix as nx
from neurenix.backend import REQUIRED, Backend, hookimpl, numpy_backend
from neurenix.testing.conformance import *  # noqa: F403


class RequiredOnly(Backend):
    device_type, name = "required-only", "required-only"

    def kernels(self):
        return {name: numpy_backend.KERNELS[name] for name in REQUIRED}


class Plugin:
    @hookimpl
    def neurenix_backends(self):
        return [RequiredOnly()]


@pytest.fixture(scope="module")
def neurenix_device():
    plugin = Plugin()
    nx.backend.register(plugin, "test-required-only")
    assert nx.backend.kernel_providers("required-only")["neg"] == ["core (composed)"]
    yield "required-only"
    nx.backend.unregister(plugin)
