"""The conformance suite itself: backends collect it with `from neurenix.testing.conformance import *`, so
every test must be in its `__all__` (a test left out is silently never run by any backend)."""

import inspect

from neurenix.testing import conformance


def test_every_test_is_exported():
    tests = {name for name, obj in vars(conformance).items() if name.startswith("test_") and inspect.isfunction(obj)}
    assert tests <= set(conformance.__all__), f"not in __all__: {sorted(tests - set(conformance.__all__))}"
    assert all(hasattr(conformance, name) for name in conformance.__all__)
