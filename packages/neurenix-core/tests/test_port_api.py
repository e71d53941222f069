"""PyTorch-port API: neurenix.device(...), neurenix.cuda, random fills and draws, default dtype, inference_mode."""

import numpy as np
import pytest

import neurenix as nx
import neurenix.device as device_module


def test_device_is_callable_and_still_a_module():
    assert nx.device("cpu") is nx.Device("cpu") and nx.device() is nx.Device("cpu")
    assert device_module.Device is nx.Device
    assert nx.zeros(2).to(nx.tensor([1.0], dtype=nx.float64)).dtype == nx.float64


def test_cuda_namespace_answers_without_a_gpu():
    assert nx.cuda.device_count() == nx.get_device_count("cuda")
    assert nx.cuda.is_available() == (nx.cuda.device_count() > 0)
    nx.cuda.manual_seed(3)
    nx.cuda.manual_seed_all(3)
    if not nx.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            nx.cuda.current_device()


def test_tensor_conveniences():
    x = nx.zeros(2, 3)
    assert x.contiguous() is x and not x.is_cuda and x.int().dtype == nx.int64
    with pytest.raises(TypeError, match="float16"):
        x.half()


def test_uniform_and_normal_fill_in_place_from_the_seeded_generator():
    nx.manual_seed(0)
    a = nx.zeros(1000, dtype=nx.float64).uniform_(-2, 3)
    assert a.dtype == nx.float64 and a.numpy().min() >= -2 and a.numpy().max() < 3
    nx.manual_seed(0)
    assert (nx.zeros(1000, dtype=nx.float64).uniform_(-2, 3).numpy() == a.numpy()).all()
    b = nx.zeros(2000).normal_(1.0, 0.5)
    assert abs(b.numpy().mean() - 1) < 0.05 and abs(b.numpy().std() - 0.5) < 0.05
    w = nx.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="normal_"):
        w.normal_()
    with nx.no_grad():
        w.normal_()


def test_compiled_function_draws_fresh_in_place_values():
    step = nx.compile(lambda x: x.clone().uniform_() + x)
    x = nx.zeros(4)
    outs = [step(x).numpy().copy() for _ in range(3)]
    assert not np.array_equal(outs[1], outs[2])


def test_random_functions():
    nx.manual_seed(1)
    mean = nx.zeros(3, requires_grad=True)
    s = nx.normal(mean, 2.0)
    s.sum().backward()
    assert s.shape == (3,) and mean.grad.tolist() == [1, 1, 1]
    assert nx.normal(0.0, 1.0, (2, 3)).shape == (2, 3)
    p = nx.tensor([0.0, 1.0, 0.0, 1.0])
    assert nx.bernoulli(p).tolist() == [0, 1, 0, 1]
    for bad in ([0.5, float("nan")], [1.5], [-0.1]):
        with pytest.raises(ValueError, match="bernoulli: probabilities must be in"):
            nx.bernoulli(nx.tensor(bad))
    draws = nx.multinomial(nx.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0]]), 2)
    assert draws.shape == (2, 2) and sorted(draws[0].tolist()) == [1, 2] and sorted(draws[1].tolist()) == [0, 2]
    with pytest.raises(ValueError, match="multinomial"):
        nx.multinomial(nx.tensor([0.0, 1.0]), 2)
    assert nx.multinomial(nx.tensor([0.0, 1.0]), 4, replacement=True).tolist() == [1, 1, 1, 1]
    assert nx.randint(10, (5,)).shape == (5,)


def test_as_tensor_shares_when_it_can():
    a = np.arange(3.0)
    t = nx.as_tensor(a)
    a[0] = 7
    assert t[0].item() == 7 and nx.as_tensor(t) is t
    assert nx.as_tensor([1, 2], dtype=nx.float64).dtype == nx.float64


def test_default_dtype():
    assert nx.get_default_dtype() == nx.float32
    nx.set_default_dtype(nx.float64)
    try:
        assert nx.zeros(2).dtype == nx.float64 and nx.tensor(1.5).dtype == nx.float64
    finally:
        nx.set_default_dtype(nx.float32)
    with pytest.raises(TypeError, match="set_default_dtype"):
        nx.set_default_dtype(nx.int64)


def test_inference_mode():
    x = nx.ones(2, requires_grad=True)
    with nx.inference_mode():
        assert not (x * 2).requires_grad
    with nx.inference_mode(False):
        assert (x * 2).requires_grad

    @nx.inference_mode
    def bare(t):
        return t * 2

    @nx.inference_mode()
    def called(t):
        return t * 2
    assert not bare(x).requires_grad and not called(x).requires_grad
