"""Core's NumPy backend runs the whole conformance suite (it is the reference others are held to)."""

import pytest

from neurenix.testing.conformance import *  # noqa: F403


@pytest.fixture(scope="module")
def neurenix_device():
    return "cpu"
