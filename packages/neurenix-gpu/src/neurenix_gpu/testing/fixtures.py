"""pytest fixtures for the GPU packages' tests; a conftest imports the ones it uses."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def kernel_cache(tmp_path_factory):
    """One kernel cache for the test session, in a temporary folder: each target compiles once per session,
    the disk cache is exercised, and nothing is left in the user's cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("NEURENIX_KERNEL_CACHE", str(tmp_path_factory.mktemp("kernels")))
    yield
    mp.undo()
