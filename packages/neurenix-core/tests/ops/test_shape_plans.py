"""Shape plans are cached per shape, and the caches stay bounded however many shapes a program uses."""

import neurenix as nx
from neurenix.ops import _operands, movement


def test_shape_plan_caches_are_bounded(monkeypatch):
    monkeypatch.setattr(_operands, "_CACHE_LIMIT", 8)
    for n in range(1, 40):
        x = nx.ones(n, 1, requires_grad=True)
        ((x + nx.ones(3)).reshape(-1).sum()).backward()
        assert x.grad.shape == (n, 1)
    for cache in (_operands._broadcast_cache, _operands._sum_to_cache, movement._reshape_cache):
        assert 0 < len(cache) <= 8
