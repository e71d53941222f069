"""Tests that compare neurenix with PyTorch itself, where PyTorch is the reference for names and semantics
(schedulers, optimizers, save/load...). PyTorch is a test-only peer: the ``peers`` tox env installs it; elsewhere
these tests skip, unless NEURENIX_REQUIRE_TORCH is set (as in that env), where a missing torch is a failure."""

from __future__ import annotations

import importlib
import os

import pytest


@pytest.fixture(scope="session")
def torch():
    """The ``torch`` module (a skip where it is not installed, a failure where it is required)."""
    if os.environ.get("NEURENIX_REQUIRE_TORCH"):
        return importlib.import_module("torch")
    return pytest.importorskip("torch", reason="PyTorch is not installed (test-only peer: tox -e peers installs it)")
