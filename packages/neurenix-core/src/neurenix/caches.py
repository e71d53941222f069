"""Bounded caches for plans computed from shapes (broadcast results, reshape targets, permutations, reduction
axes...): the hot paths look a plan up instead of computing it per op. A program that meets ever new shapes
must not grow them without end, so every such cache in neurenix, backends included, stores through
``remember``: past ``LIMIT`` entries a cache starts over (recomputing a plan is cheap; a lookup is cheaper).
"""

from __future__ import annotations

#: the most entries a cache holds before it starts over
LIMIT = 4096


def remember(cache: dict, key, value):
    """``cache[key] = value`` (returned), after emptying ``cache`` if it holds ``LIMIT`` entries already."""
    if len(cache) >= LIMIT:
        cache.clear()
    cache[key] = value
    return value


_constants: dict = {}


def constant(buffer):
    """Note that ``buffer`` (returned) is cached and never changes: ``neurenix.compile`` may then keep it in a
    program as a constant, although it was made before the call it traced."""
    return remember(_constants, id(buffer), buffer)


def is_constant(buffer) -> bool:
    """Whether ``buffer`` was noted by ``constant`` (and is still cached)."""
    return _constants.get(id(buffer)) is buffer


__all__ = ["LIMIT", "constant", "is_constant", "remember"]
