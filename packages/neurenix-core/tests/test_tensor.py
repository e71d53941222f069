import threading

import numpy as np
import pytest

import neurenix as nx
from neurenix.errors import DTypeError


@pytest.mark.parametrize("sizes, shape", [((5,), (5,)), ((2, 3), (2, 3)), ((), (0,)), ((0, 2), (0, 2))])
def test_legacy_constructor_takes_sizes_like_torch_tensor(sizes, shape):
    t = nx.Tensor(*sizes)
    assert t.shape == shape and t.dtype == nx.get_default_dtype()
    assert not t.numpy().any()


@pytest.mark.parametrize("args, error", [((2, 1.5), TypeError), ((-1,), ValueError), (([1], 2), TypeError)])
def test_legacy_constructor_refuses_mixed_or_negative_sizes(args, error):
    with pytest.raises(error, match="Tensor"):
        nx.Tensor(*args)


@pytest.mark.parametrize("data, dtype", [
    (1.5, "float32"), (3, "int64"), (True, "bool"), ([1.0, 2.0], "float32"), ([[1, 2], [3, 4]], "int64"),
    (np.zeros(3, np.float64), "float64"), (np.zeros(3, np.float32), "float32"), (np.zeros(3, np.int32), "int64"),
    (np.zeros(3, np.float16), "float32"), (np.zeros(3, bool), "bool"), (np.float64(2.0), "float64"),
])
def test_construction_infers_dtype_like_torch_tensor(data, dtype):
    for make in (nx.Tensor, nx.tensor) if type(data) is not int else (nx.tensor,):  # Tensor(3): sizes, see below
        t = make(data)
        assert t.dtype.name == dtype
        np.testing.assert_array_equal(t.numpy(), np.asarray(data))


def test_construction_copies_the_data():
    a = np.arange(4.0)
    t = nx.Tensor(a)
    a[0] = 99
    assert t.numpy()[0] == 0
    u = nx.Tensor(t)
    assert u.numpy() is not t.numpy() and u.tolist() == t.tolist()


def test_from_numpy_shares_memory_on_the_host():
    a = np.arange(4.0)
    t = nx.from_numpy(a)
    a[0] = 7
    assert t.numpy()[0] == 7
    with pytest.raises(TypeError, match="contiguous"):
        nx.from_numpy(np.arange(6.0).reshape(2, 3).T)


def test_numpy_of_a_tensor_in_a_graph_is_read_only():
    # PyTorch refuses numpy() here; a writable shared array would silently change what backward computes
    x = nx.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    for t in (x, y, x * 2):
        assert not t.numpy().flags.writeable and not np.asarray(t).flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            t.numpy()[0] = 10
    y.backward()
    assert x.grad.tolist() == [2.0, 4.0]
    shared = x.detach().numpy()  # as PyTorch: writable and shared
    shared[0] = 10
    assert x.tolist() == [10.0, 2.0]
    assert nx.tensor([1.0]).numpy().flags.writeable


def test_np_array_of_a_tensor_is_a_copy():
    for t in (nx.tensor([1.0, 2.0]), nx.tensor([1.0, 2.0], requires_grad=True)):
        for a in (np.array(t), np.array(t, dtype=np.float64)):
            a[0] = 5
        assert t.tolist() == [1.0, 2.0]
    t = nx.tensor([1.0, 2.0])
    np.asarray(t)[0] = 5  # np.asarray shares, as t.numpy()
    assert t.tolist() == [5.0, 2.0]


@pytest.mark.parametrize("bad", [[1, [2, 3]], "text", {"a": 1}, [None]])
def test_construction_from_bad_data_names_the_problem(bad):
    with pytest.raises((TypeError, ValueError)):
        nx.tensor(bad)


def test_dtype_argument_and_requires_grad():
    t = nx.tensor([1, 2], dtype=nx.float64, requires_grad=True)
    assert t.dtype is nx.float64 and t.requires_grad and t.is_leaf
    with pytest.raises(RuntimeError, match="floating-point.*int64"):
        nx.tensor([1, 2], requires_grad=True)


@pytest.mark.parametrize("factory, expected", [
    (lambda: nx.zeros(2, 3), np.zeros((2, 3))), (lambda: nx.ones((2, 3)), np.ones((2, 3))),
    (lambda: nx.full((2,), 7), np.full(2, 7)), (lambda: nx.arange(5), np.arange(5)),
    (lambda: nx.arange(1, 2, 0.25), np.arange(1, 2, 0.25)), (lambda: nx.linspace(0, 1, 5), np.linspace(0, 1, 5)),
    (lambda: nx.eye(3), np.eye(3)), (lambda: nx.zeros_like(nx.ones(2, dtype=nx.int64)), np.zeros(2, np.int64)),
])
def test_factories(factory, expected):
    t = factory()
    np.testing.assert_allclose(t.numpy(), expected)
    assert t.dtype.name == ("float32" if expected.dtype.kind == "f" else "int64")


@pytest.mark.parametrize("draw", [lambda: nx.randn(3, 4), lambda: nx.rand(5), lambda: nx.randint(0, 10, (6,)),
                                  lambda: nx.randperm(7)])
def test_random_draws_are_reproducible_with_manual_seed(draw):
    nx.manual_seed(123)
    a = draw().numpy()
    nx.manual_seed(123)
    np.testing.assert_array_equal(draw().numpy(), a)


def test_random_distributions():
    nx.manual_seed(0)
    n = nx.randn(20000).numpy()
    u = nx.rand(20000).numpy()
    assert abs(n.mean()) < 0.03 and abs(n.std() - 1) < 0.03
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    with pytest.raises(TypeError, match="float dtype"):
        nx.randn(3, dtype=nx.int64)


def test_properties():
    t = nx.zeros(2, 3, 4)
    assert t.shape == (2, 3, 4) and t.ndim == 3 and t.dim() == 3 and t.numel() == 24 and len(t) == 2
    assert t.size() == (2, 3, 4) and t.size(1) == 3 and str(t.device) == "cpu"
    assert [r.shape for r in t] == [(3, 4), (3, 4)]


def test_scalar_conversions_and_their_errors():
    t = nx.tensor([[2.5]])
    assert t.item() == 2.5 and float(t) == 2.5 and int(t) == 2 and bool(t) and f"{t:.2f}" == "2.50"
    with pytest.raises(ValueError, match=r"item\(\).*\(2,\)"):
        nx.ones(2).item()
    with pytest.raises(ValueError, match="ambiguous"):
        bool(nx.ones(2))
    with pytest.raises(TypeError, match="len"):
        len(nx.tensor(1.0))


def test_numpy_interop_both_ways():
    t = nx.tensor([1.0, 2.0])
    assert isinstance(np.asarray(t), np.ndarray) and np.asarray(t, dtype=np.float64).dtype == np.float64
    for out in (np.ones(2) + t, np.ones(2, np.float32) * t, t - np.ones(2)):
        assert isinstance(out, nx.Tensor)
    assert (np.array([3.0, 4.0]) - t).tolist() == [2.0, 2.0]


def test_repr():
    assert repr(nx.tensor([1.0, 2.5])) == "tensor([1.0, 2.5])"
    assert repr(nx.tensor([1, 2])) == "tensor([1, 2])"
    assert "dtype=neurenix.float64" in repr(nx.tensor([1.0], dtype=nx.float64))
    assert "requires_grad=True" in repr(nx.tensor([1.0], requires_grad=True))
    assert "grad_fn=<MulBackward>" in repr(nx.tensor([1.0], requires_grad=True) * 2)


def test_in_place_updates_rebind_the_value_and_never_alias():
    a = nx.tensor([1.0, 2.0])
    view = a.detach()
    a.add_(1).mul_(2)
    a += 1
    a[0] = 10.0
    assert a.tolist() == [10.0, 7.0] and view.tolist() == [1.0, 2.0]
    assert a.zero_().tolist() == [0.0, 0.0] and a.fill_(3).tolist() == [3.0, 3.0]
    b = nx.zeros(2, dtype=nx.int64)
    b += 1.7  # keeps the tensor's dtype, as in PyTorch
    assert b.dtype is nx.int64 and b.tolist() == [1, 1]


def test_in_place_on_a_leaf_that_requires_grad_is_an_error_while_recording():
    w = nx.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf.*no_grad"):
        w.add_(1)
    with nx.no_grad():
        w.sub_(0.5)
    assert w.tolist() == [0.5, 0.5] and w.requires_grad and w.is_leaf


def test_in_place_on_a_non_leaf_is_differentiable():
    x = nx.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    y[1] = x[0] * 10
    y.sum().backward()
    assert x.grad.tolist() == [12.0, 0.0, 2.0]


def test_setitem_shape_and_index_errors():
    a = nx.zeros(3, 4)
    with pytest.raises(IndexError, match="index 3 is out of bounds for axis 0 of size 3"):
        a[3]
    with pytest.raises(IndexError, match="too many indices"):
        a[0, 0, 0]
    with pytest.raises(ValueError):
        a[0] = nx.ones(5)


def test_to_dtype_and_clone():
    a = nx.tensor([1.5, -2.5])
    assert a.to(nx.int64).tolist() == [1, -2] and a.to("float64").dtype is nx.float64 and a.to(nx.float32) is a
    c = a.clone()
    c.add_(1)
    assert a.tolist() == [1.5, -2.5]


def test_tensors_are_hashable_by_identity():
    a, b = nx.ones(1), nx.ones(1)
    assert len({a, b, a}) == 2


def test_grad_mode_is_per_thread():
    seen = []
    with nx.no_grad():
        t = threading.Thread(target=lambda: seen.append(nx.is_grad_enabled()))
        t.start()
        t.join()
        assert not nx.is_grad_enabled()
    assert seen == [True] and nx.is_grad_enabled()


def test_bool_tensor_ops():
    m = nx.tensor([True, False, True])
    assert (~m).tolist() == [False, True, False]
    assert (m & nx.tensor([True, True, False])).tolist() == [True, False, False]
    assert (m | False).tolist() == [True, False, True]
    assert m.any().item() and not m.all().item() and m.sum().item() == 2
    with pytest.raises(DTypeError, match="bool"):
        _ = -m


def test_copy_broadcasts_casts_and_keeps_gradients_apart():
    a = nx.tensor([1.0, 2.0], requires_grad=True)
    s = a * 3
    x = nx.zeros(2)
    x.copy_(s)
    ((x * 2).sum() + s.sum()).backward()  # x and s each have their own node: no double release
    assert a.grad.tolist() == [9.0, 9.0]
    y = nx.zeros(2, 3, dtype=nx.int64)
    y.copy_(nx.tensor([1.7, 2.2, 3.9]))
    assert y.dtype is nx.int64 and y.tolist() == [[1, 2, 3], [1, 2, 3]]


@pytest.mark.parametrize("value", [3.0, [1.0, 2.0], [[1, 2]], [True]])
def test_pickle_and_deepcopy_keep_value_dtype_class_and_requires_grad(value):
    import copy
    import pickle

    t = nx.tensor(value)
    p = nx.nn.Parameter(nx.tensor(value, dtype=nx.float64))
    for original in (t, p):
        for clone in (pickle.loads(pickle.dumps(original)), copy.deepcopy(original)):
            assert type(clone) is type(original) and clone.shape == original.shape
            assert clone.dtype is original.dtype and clone.requires_grad == original.requires_grad
            np.testing.assert_array_equal(clone.numpy(), original.numpy())
    deep = copy.deepcopy(p)
    with nx.no_grad():
        deep.add_(1)
    assert not np.array_equal(deep.numpy(), p.numpy())
    with pytest.raises(RuntimeError, match="leaf"):
        copy.deepcopy(p * 2)


def test_signature_is_shape_dtype_device_and_hashable():
    a, b = nx.zeros(2, 3), nx.ones(2, 3)
    assert a.signature == (a.shape, nx.float32, a.device) == b.signature
    assert a.signature != nx.zeros(2, 3, dtype=nx.float64).signature != nx.zeros(3, 2).signature
    assert len({a.signature, b.signature}) == 1
