"""neurenix-backend-cpu (``cpu-c``), installed as a distribution, runs the conformance suite on ``cpu``
with the elementwise, reduction and Winograd size thresholds at zero and two threads, so each op those kernels
cover runs in C, even on the suite's small inputs (every 3x3 stride-1 convolution through Winograd, first and
second order); dtypes float32, float64 (and int64/bool, which fall through
to NumPy).
"""

import os

import pytest
from neurenix_backend_cpu import conv, elementwise, reductions

import neurenix as nx
from neurenix.testing.conformance import *  # noqa: F403

from .conftest import in_c


def _cpu_c():
    (status,) = [s for s in nx.list_backends() if s.name == "cpu-c"]
    return status


@pytest.fixture(scope="module")
def neurenix_device():
    required = [r.strip() for r in os.environ.get("NEURENIX_REQUIRE_BACKENDS", "").split(",")]
    if not _cpu_c().available and "cpu-c" not in required:
        pytest.skip(f"cpu-c cannot run here: {_cpu_c().reason}")
    with in_c(((elementwise, "MIN_ELEMENTWISE"), (elementwise, "MIN_BROADCAST"), (reductions, "MIN_REDUCE"),
               (conv, "MIN_CHANNELS"), (conv, "MIN_PIXELS"), (conv, "MIN_TASK_PIXELS"))):
        yield "cpu"


def test_cpu_c_found_through_its_entry_point(neurenix_device):
    status = _cpu_c()
    assert (status.device_type, status.plugin, status.distribution, status.available) == \
        ("cpu", "cpu-c", "neurenix-backend-cpu", True)
    from neurenix_backend_cpu import KERNELS

    providers = nx.Device("cpu").kernels.providers
    assert {k for k, p in providers.items() if p == "cpu-c"} == set(KERNELS)
