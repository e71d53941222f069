"""neurenix.Generator: streams of their own for every draw that takes ``generator=``, as torch.Generator."""

import numpy as np
import pytest

import neurenix as nx

DRAWS = {
    "randn": lambda g: nx.randn(2, 3, generator=g),
    "rand": lambda g: nx.rand(4, generator=g, dtype=nx.float64),
    "randint": lambda g: nx.randint(0, 9, (5,), generator=g),
    "randperm": lambda g: nx.randperm(6, generator=g),
    "normal": lambda g: nx.normal(1.0, 2.0, (3,), generator=g),
    "normal-tensor": lambda g: nx.normal(nx.zeros(3), 1.0, generator=g),
    "bernoulli": lambda g: nx.bernoulli(nx.full((8,), 0.5), generator=g),
    "multinomial": lambda g: nx.multinomial(nx.tensor([0.1, 0.2, 0.7]), 2, generator=g),
    "uniform_": lambda g: nx.zeros(4).uniform_(-1.0, 1.0, generator=g),
    "normal_": lambda g: nx.zeros(4).normal_(generator=g),
    "nn.init": lambda g: nx.nn.init.xavier_normal_(nx.zeros(3, 2), generator=g),
}


@pytest.mark.parametrize("draw", DRAWS)
def test_a_seeded_generator_repeats_and_leaves_the_global_one_alone(draw):
    g = nx.Generator().manual_seed(7)
    nx.manual_seed(0)
    first = DRAWS[draw](g).numpy()
    after_global = nx.rand(3).numpy()
    nx.manual_seed(0)
    assert np.array_equal(DRAWS[draw](g.manual_seed(7)).numpy(), first)
    assert np.array_equal(nx.rand(3).numpy(), after_global)  # the global stream did not move
    other = DRAWS[draw](nx.Generator().manual_seed(8)).numpy()
    assert draw in ("bernoulli", "multinomial") or not np.array_equal(other, first)


def test_state_seed_and_repr():
    g = nx.Generator()
    assert isinstance(g.seed(), int) and 0 <= g.initial_seed() < 2 ** 64
    state = g.get_state()
    a = nx.randn(3, generator=g)
    g.set_state(state)
    assert (a == nx.randn(3, generator=g)).all()
    assert g.manual_seed(-1).initial_seed() == 2 ** 64 - 1  # as PyTorch: negative seeds modulo 2**64
    assert "initial_seed=18446744073709551615" in repr(g)
    np_g = np.random.default_rng(0)
    assert nx.randn(2, generator=np_g).shape == (2,)  # a NumPy generator is taken too


def test_compiled_function_draws_from_the_generator_at_every_replay():
    g = nx.Generator()
    f = nx.compile(lambda x: x + nx.randn(2, generator=g))
    g.manual_seed(1)
    got = [f(nx.zeros(2)).numpy() for _ in range(3)]
    g.manual_seed(1)
    want = [nx.randn(2, generator=g).numpy() for _ in range(3)]
    np.testing.assert_array_equal(got, want)
    assert f.stats["replays"] == 2


@pytest.mark.parametrize("bad", [5, "seed", object()])
def test_bad_generators_and_seeds_are_refused(bad):
    with pytest.raises(TypeError, match="randn: generator must be a neurenix.Generator"):
        nx.randn(2, generator=bad)
    with pytest.raises(TypeError, match="nn.init.uniform_: generator must be"):
        nx.nn.init.uniform_(nx.zeros(2), generator=bad)
    with pytest.raises(ValueError, match=r"Generator.manual_seed: seed must be in \[-2\*\*63, 2\*\*64\)"):
        nx.Generator().manual_seed(2 ** 64)
