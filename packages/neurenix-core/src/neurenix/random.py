"""The random number generator behind ``randn``, ``rand``, dropout and weight initialisation.

Numbers are drawn on the host with NumPy's PCG64 and then moved to the device, so one seed gives the
same values on every device.
"""

from __future__ import annotations

import numpy as np

from .arguments import integer
from .capture import recording

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Seed neurenix's generator (and return it), for reproducible runs. As in PyTorch, any int in
    ``[-2**63, 2**64)`` is a seed (negative ones are taken modulo 2**64)."""
    global _generator
    recording.refuse("it reseeds neurenix's generator (manual_seed), which a replay would not do")
    seed = integer(seed, "seed", "manual_seed")
    if not -2 ** 63 <= seed < 2 ** 64:
        raise ValueError(f"manual_seed: seed must be in [-2**63, 2**64), got {seed}")
    _generator = np.random.default_rng(seed % 2 ** 64)
    return _generator


def generator() -> np.random.Generator:
    """The generator in use (a ``numpy.random.Generator``)."""
    recording.refuse("it draws from neurenix's generator on the host (neurenix.random.generator(): a task sampler "
                     "or a shuffle?), and a replay would reuse the numbers drawn once: draw outside the compiled "
                     "function and pass the results in")
    return _generator


def draw(sample):
    """``sample(generator)``, unchecked: creation's random ops draw through it, inside a host step that a
    compiled function repeats at every replay (see ``creation._drawn``)."""
    return sample(_generator)


def get_rng_state() -> dict:
    return recording.host(_get_state)


def set_rng_state(state: dict) -> None:
    recording.host(_set_state, state)


def _get_state() -> dict:
    return _generator.bit_generator.state


def _set_state(state: dict) -> None:
    _generator.bit_generator.state = state
