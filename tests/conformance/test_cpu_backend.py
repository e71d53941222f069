"""neurenix-backend-cpu (``cpu-c``), installed as a distribution, runs the conformance suite on ``cpu``
with every size threshold at zero, so each op its C kernels cover runs in C, even on the suite's small
inputs; dtypes float32, float64 (and int64/bool, which fall through to NumPy).

Install it with ``pip install packages/neurenix-backend-cpu`` (the tox integration env does).
"""

import os

import pytest

import neurenix as nx
from neurenix.testing.conformance import *  # noqa: F403


def _cpu_c():
    return [s for s in nx.list_backends() if s.name == "cpu-c"]


@pytest.fixture(scope="module")
def neurenix_device():
    required = [r.strip() for r in os.environ.get("NEURENIX_REQUIRE_BACKENDS", "").split(",")]
    if not _cpu_c() and "cpu-c" not in required:
        pytest.skip("neurenix-backend-cpu is not installed (pip install packages/neurenix-backend-cpu)")
    from neurenix_backend_cpu import plugin

    mp = pytest.MonkeyPatch()
    for name in ("MIN_ELEMENTWISE", "MIN_BROADCAST", "MIN_REDUCE"):
        mp.setattr(plugin, name, 0)
    mp.setattr(plugin, "_threads", [2])  # the same-shape paths too, which C takes only with threads
    yield "cpu"
    mp.undo()


def test_cpu_c_found_through_its_entry_point(neurenix_device):
    (status,) = _cpu_c()
    assert (status.device_type, status.plugin, status.distribution, status.available) == \
        ("cpu", "cpu-c", "neurenix-backend-cpu", True)
    from neurenix_backend_cpu import KERNELS

    providers = nx.Device("cpu").kernels.providers
    assert {k for k, p in providers.items() if p == "cpu-c"} == set(KERNELS)
