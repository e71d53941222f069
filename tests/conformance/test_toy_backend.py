"""The toy backend (tests/plugins/neurenix-backend-toy), installed as a distribution, runs the
conformance suite on its second device: the whole third-party plugin path, end to end.

Install it with ``pip install -e tests/plugins/neurenix-backend-toy`` (the tox integration env does).
"""

import os

import pytest

import neurenix as nx
from neurenix.testing.conformance import *  # noqa: F403


def _toy_installed() -> bool:
    return any(s.device_type == "toy" for s in nx.list_backends())


@pytest.fixture(scope="module")
def neurenix_device():
    required = [r.strip() for r in os.environ.get("NEURENIX_REQUIRE_BACKENDS", "").split(",")]
    if not _toy_installed() and "toy" not in required:
        pytest.skip("neurenix-backend-toy is not installed (pip install -e tests/plugins/neurenix-backend-toy)")
    return "toy:1"


def test_toy_found_through_its_entry_point(neurenix_device):
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
