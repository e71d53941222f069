"""The random number generator behind ``randn``, ``rand``, dropout and weight initialisation.

Numbers are drawn on the host with NumPy's PCG64 and then moved to the device, so one seed gives the
same values on every device.
"""

from __future__ import annotations

import numpy as np

from .arguments import integer

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Seed neurenix's generator (and return it), for reproducible runs. As in PyTorch, any int in
    ``[-2**63, 2**64)`` is a seed (negative ones are taken modulo 2**64)."""
    global _generator
    seed = integer(seed, "seed", "manual_seed")
    if not -2 ** 63 <= seed < 2 ** 64:
        raise ValueError(f"manual_seed: seed must be in [-2**63, 2**64), got {seed}")
    _generator = np.random.default_rng(seed % 2 ** 64)
    return _generator


def generator() -> np.random.Generator:
    """The generator in use (a ``numpy.random.Generator``)."""
    return _generator


def get_rng_state() -> dict:
    return _generator.bit_generator.state


def set_rng_state(state: dict) -> None:
    _generator.bit_generator.state = state
