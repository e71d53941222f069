"""The toy backend (tests/plugins/neurenix-backend-toy), installed as a distribution, runs the
conformance suite on its second device: the whole third-party plugin path, end to end. Without the toy
installed (``pip install tests/plugins/neurenix-backend-toy``; the tox integration env does), every test
skips saying so, unless NEURENIX_REQUIRE_BACKENDS names ``toy``.
"""

import pytest

import neurenix as nx
from neurenix.testing.conformance import *  # noqa: F403


@pytest.fixture(scope="module")
def neurenix_device():
    return "toy:1"


def test_toy_found_through_its_entry_point(conformance_device):
    (status,) = [s for s in nx.list_backends() if s.device_type == "toy"]
    assert (status.name, status.plugin, status.distribution, status.available) == \
        ("toy", "toy", "neurenix-backend-toy", True)
    assert status.devices == ["toy:0 toy device 0 (NumPy inside)", "toy:1 toy device 1 (NumPy inside)"]
    assert nx.get_device_count("toy") == 2


def test_toy_buffers_are_not_numpy_arrays(conformance_device):
    from neurenix_backend_toy import ToyBuffer

    x = nx.arange(6.0).reshape(2, 3)
    y = (x * 2).sum(dim=1)
    assert str(y.device) == "toy:1"
    assert type(y._data) is ToyBuffer and y._data.index == 1
    assert y.tolist() == [6.0, 24.0]
