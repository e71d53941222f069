"""DLPack both ways with NumPy, zero-copy on the host; what cannot be shared is refused with the reason (PyTorch
itself: tests/peers/test_dlpack.py)."""

import numpy as np
import pytest

import neurenix as nx


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool"])
def test_numpy_takes_a_tensor_without_a_copy(dtype):
    t = nx.tensor([1, 0, 1], dtype=getattr(nx, dtype if dtype != "bool" else "bool_"))
    a = np.from_dlpack(t)
    assert a.dtype == np.dtype(dtype) and np.shares_memory(a, t.numpy())
    assert t.__dlpack_device__() == (1, 0)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool"])
def test_a_tensor_from_numpy_shares_its_memory(dtype):
    a = np.zeros(3, dtype)
    t = nx.from_dlpack(a)
    a[1] = 1
    assert t.dtype.name == dtype and t.tolist()[1] == 1 and np.shares_memory(t.numpy(), a)


def test_what_cannot_be_shared_is_refused():
    with pytest.raises(RuntimeError, match="require gradient, use tensor.detach"):
        np.from_dlpack(nx.ones(2, requires_grad=True))
    assert np.from_dlpack(nx.ones(2, requires_grad=True).detach()).tolist() == [1, 1]
    with pytest.raises(TypeError, match=r"from_dlpack needs a C-contiguous array .* \(non-contiguous\)"):
        nx.from_dlpack(np.zeros((3, 4))[:, ::2])
    with pytest.raises(TypeError, match="from_dlpack needs .* got int32"):
        nx.from_dlpack(np.zeros(3, np.int32))
    with pytest.raises(TypeError, match="needs an object with __dlpack__"):
        nx.from_dlpack([1.0, 2.0])
