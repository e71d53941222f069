"""Every test starts from the same neurenix random state."""

import pytest

import neurenix as nx


@pytest.fixture(autouse=True)
def _seed():
    nx.manual_seed(1234)
