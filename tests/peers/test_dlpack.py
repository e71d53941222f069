"""DLPack with PyTorch and JAX, both ways, zero-copy on the CPU."""

from __future__ import annotations

import numpy as np
import pytest

import neurenix as nx


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool"])
def test_torch_takes_a_tensor_without_a_copy(torch, dtype):
    t = nx.tensor([1, 0, 1], dtype=getattr(nx, dtype if dtype != "bool" else "bool_"))
    p = torch.from_dlpack(t)
    assert str(p.dtype) == f"torch.{dtype}" and p.tolist() == t.tolist()
    p[1] = 1
    assert t.tolist()[1] == 1  # one memory


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool"])
def test_a_tensor_from_torch_shares_its_memory(torch, dtype):
    p = torch.zeros(3, dtype=getattr(torch, dtype))
    t = nx.from_dlpack(p)
    p[2] = 1
    assert t.dtype.name == dtype and t.tolist()[2] == 1
    assert np.shares_memory(t.numpy(), p.numpy())


def test_what_torch_cannot_share_is_refused(torch):
    with pytest.raises(BufferError, match="could not export to the host"):
        nx.from_dlpack(torch.ones(2, requires_grad=True))
    with pytest.raises(TypeError, match=r"from_dlpack needs .* \(non-contiguous\)"):
        nx.from_dlpack(torch.zeros(3, 4).t())


@pytest.fixture(scope="module")
def jnp():
    """jax.numpy (a skip where JAX is not installed, a failure where the env requires it: NEURENIX_REQUIRE_JAX)."""
    import importlib
    import os
    if os.environ.get("NEURENIX_REQUIRE_JAX"):
        return importlib.import_module("jax.numpy")
    return pytest.importorskip("jax.numpy", reason="JAX is not installed (the peers tox env installs it)")


def test_jax_both_ways(jnp):
    """JAX takes a tensor's values (without a copy where the memory is 64-byte aligned, as XLA wants: it copies a
    NumPy array's otherwise too), and a tensor takes a JAX array's memory."""
    t = nx.from_numpy(np.arange(1024, dtype=np.float32))
    j = jnp.from_dlpack(t)
    assert np.array_equal(np.asarray(j), t.numpy())
    if t.numpy().ctypes.data % 64 == 0:
        assert j.unsafe_buffer_pointer() == t.numpy().ctypes.data
    a = jnp.arange(6, dtype=jnp.float32)
    u = nx.from_dlpack(a)
    assert u.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0] and u.numpy().ctypes.data == a.unsafe_buffer_pointer()
