"""The backend as neurenix sees it: its table names kernels of core's contract, and serves them on cpu."""

from neurenix_backend_cpu import KERNELS

import neurenix as nx
from neurenix import backend


def test_the_table_names_kernels_of_the_contract():
    assert set(KERNELS) <= set(backend.KERNELS)


def test_the_backend_serves_every_kernel_of_its_table():
    providers = nx.Device("cpu").kernels.providers
    assert all(providers[k] == "cpu-c" for k in KERNELS)
