"""Test support for GPU backends: the host emulator (:mod:`.emulator`), ABI checks of a backend's cffi
declarations against the vendor's headers (:mod:`.abi`), and running an emulated backend as a device type."""

from __future__ import annotations

import contextlib
import os

from neurenix.backend import hookimpl, register, unregister


class _Plugin:
    """A run-time plugin serving one backend object."""

    def __init__(self, backend):
        self.backend = backend

    @hookimpl
    def neurenix_backends(self):
        return [self.backend]


@contextlib.contextmanager
def serving(backend, name: str):
    """Register ``backend`` (an emulated one, say) with neurenix for the block, then unregister it."""
    plugin = _Plugin(backend)
    register(plugin, name=name)
    try:
        yield backend
    finally:
        unregister(plugin)


def skip_unless_required(backend: str, reason: str) -> None:
    """Skip the calling test with ``reason``, or fail it where NEURENIX_REQUIRE_BACKENDS names ``backend``
    (a device type such as ``cuda``): what must run there may not skip."""
    import pytest

    required = {r.strip() for r in os.environ.get("NEURENIX_REQUIRE_BACKENDS", "").split(",")}
    if backend in required:
        pytest.fail(f"NEURENIX_REQUIRE_BACKENDS names {backend}, but {reason}")
    pytest.skip(reason)


def run_on_real_device(device_type: str) -> None:
    """A product and a reduction on a real device of ``device_type`` against NumPy (for tests marked ``gpu``);
    skip where there is none."""
    import numpy as np
    import pytest

    import neurenix as nx

    if not nx.get_device_count(device_type):
        pytest.skip(f"no {device_type} device here")
    a = np.arange(6.0).reshape(2, 3)
    x = nx.Tensor(a, device=device_type)
    np.testing.assert_allclose((x @ x.T).sum(dim=1).numpy(), (a @ a.T).sum(1))
