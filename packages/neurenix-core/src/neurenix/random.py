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
    _generator = np.random.default_rng(_seed(seed, "manual_seed"))
    return _generator


def _seed(seed, op: str) -> int:
    seed = integer(seed, "seed", op)
    if not -2 ** 63 <= seed < 2 ** 64:
        raise ValueError(f"{op}: seed must be in [-2**63, 2**64), got {seed}")
    return seed % 2 ** 64


class Generator:
    """A random stream of its own, as ``torch.Generator``: pass it as ``generator=`` to ``randn``, ``rand``,
    ``randint``, ``randperm``, ``normal``, ``bernoulli``, ``multinomial``, ``Tensor.uniform_``/``normal_`` and
    ``nn.init``, and those draws leave neurenix's global generator alone. Numbers are drawn on the host (NumPy's
    PCG64) whatever the device, so ``device`` only records where the caller meant it for. Its state
    (``get_state``) is PCG64's, a dict, where PyTorch's is a byte tensor."""

    def __init__(self, device="cpu"):
        self.device = device
        self.seed()

    def manual_seed(self, seed: int) -> Generator:
        """Seed this generator (any int in ``[-2**63, 2**64)``, as PyTorch); returns it."""
        self._initial = _seed(seed, "Generator.manual_seed")
        self.numpy = np.random.default_rng(self._initial)
        return self

    def seed(self) -> int:
        """Seed this generator from the operating system's entropy; returns the seed."""
        self.manual_seed(int(np.random.SeedSequence().entropy) % 2 ** 64)
        return self._initial

    def initial_seed(self) -> int:
        return self._initial

    def get_state(self) -> dict:
        return self.numpy.bit_generator.state

    def set_state(self, state: dict) -> Generator:
        self.numpy.bit_generator.state = state
        return self

    def __repr__(self) -> str:
        return f"<neurenix.Generator device={self.device!r} initial_seed={self._initial}>"


def numpy_generator(generator, op: str) -> np.random.Generator | None:
    """The NumPy generator behind a ``generator=`` argument: None (neurenix's global one, read at draw time), a
    ``neurenix.Generator`` or a ``numpy.random.Generator``; a TypeError names anything else."""
    if generator is None or isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, Generator):
        return generator.numpy
    raise TypeError(f"{op}: generator must be a neurenix.Generator (or a numpy.random.Generator), got "
                    f"{type(generator).__name__}")


def generator() -> np.random.Generator:
    """The generator in use (a ``numpy.random.Generator``)."""
    recording.refuse("it draws from neurenix's generator on the host (neurenix.random.generator(): a task sampler "
                     "or a shuffle?), and a replay would reuse the numbers drawn once: draw outside the compiled "
                     "function and pass the results in")
    return _generator


def draw(sample, rng: np.random.Generator | None = None):
    """``sample(rng)`` (neurenix's generator if None), unchecked: creation's random ops draw through it, inside a
    host step that a compiled function repeats at every replay (see ``creation._drawn``)."""
    return sample(_generator if rng is None else rng)


def get_rng_state() -> dict:
    return recording.host(_get_state)


def set_rng_state(state: dict) -> None:
    recording.host(_set_state, state)


def _get_state() -> dict:
    return _generator.bit_generator.state


def _set_state(state: dict) -> None:
    _generator.bit_generator.state = state
