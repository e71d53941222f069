"""DLPack with PyTorch, both ways, zero-copy on the CPU."""

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
