"""DropBlock2d / drop_block2d: torchvision's semantics (checked against a NumPy oracle drawing the same seeds), the
dropped fraction, even block sizes, the task axis, and the errors."""

import numpy as np
import pytest

import neurenix as nx
from neurenix.models import DropBlock2d, drop_block2d
from neurenix.nn.task_axis import task_batch


def _oracle(x: np.ndarray, p: float, block: int, seed: int, eps: float = 1e-6, tasks: int = 1) -> np.ndarray:
    """torchvision's drop_block2d in NumPy (block rows i..i+block-1 for a seed at i), from neurenix's draws."""
    n, c, h, w = x.shape
    gamma = p * h * w / (block ** 2 * (h - block + 1) * (w - block + 1))
    seeds = nx.manual_seed(seed).random((n, c, h - block + 1, w - block + 1)) < gamma
    dropped = np.zeros(x.shape, bool)
    for i, j in zip(*np.nonzero(seeds.any((0, 1)))):
        dropped[:, :, i:i + block, j:j + block] |= seeds[:, :, i, j][:, :, None, None]
    keep = (~dropped).astype(x.dtype).reshape(tasks, -1)
    return x * (keep * keep.shape[1] / (eps + keep.sum(1, keepdims=True))).reshape(x.shape)


@pytest.mark.parametrize("block", [1, 2, 3, 5])
def test_equals_the_oracle(block):
    x = np.random.default_rng(0).standard_normal((3, 2, 9, 7))
    nx.manual_seed(4)
    got = drop_block2d(nx.tensor(x), 0.3, block).numpy()
    np.testing.assert_allclose(got, _oracle(x, 0.3, block, 4), rtol=1e-12)
    assert (got == 0).any()


def test_blocks_are_squares_and_the_fraction_is_p():
    nx.manual_seed(0)
    out = drop_block2d(nx.ones(8, 16, 20, 20, dtype=nx.float64), 0.2, 3).numpy()
    zero = out == 0
    assert abs(zero.mean() - 0.2) < 0.03  # gamma makes the expected fraction about p (overlaps lower it)
    # every dropped element lies in a 3x3 square of dropped elements
    padded = np.pad(zero, ((0, 0), (0, 0), (2, 2), (2, 2)))
    squares = np.zeros_like(zero)
    for di in range(3):
        for dj in range(3):
            all_in = np.ones_like(zero)
            for a in range(3):
                for b in range(3):
                    all_in &= padded[:, :, 2 - di + a:2 - di + a + 20, 2 - dj + b:2 - dj + b + 20]
            squares |= all_in
    assert (squares == zero).all()
    np.testing.assert_allclose(out[~zero], out.size / (1e-6 + (~zero).sum()))


def test_eval_or_zero_p_is_identity_and_gradients_flow():
    x = nx.randn(2, 3, 6, 6, dtype=nx.float64, requires_grad=True)
    layer = DropBlock2d(0.5, 3)
    assert layer.eval()(x) is x and drop_block2d(x, 0.0, 3) is x
    nx.manual_seed(1)
    y = layer.train()(x)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), (y / x).detach().numpy(), rtol=1e-12)
    assert "p=0.5, block_size=3" in repr(layer)


def test_each_task_scaled_by_its_own_kept_fraction():
    x = np.random.default_rng(1).standard_normal((6, 2, 8, 8))
    nx.manual_seed(2)
    with task_batch(3):
        got = drop_block2d(nx.tensor(x), 0.4, 3).numpy()
    np.testing.assert_allclose(got, _oracle(x, 0.4, 3, 2, tasks=3), rtol=1e-12)


def test_bad_arguments():
    with pytest.raises(ValueError, match="larger than the 4x4"):
        drop_block2d(nx.randn(1, 1, 4, 4), 0.1, 5)
    with pytest.raises(nx.ShapeError, match=r"\(N, C, H, W\)"):
        drop_block2d(nx.randn(1, 4, 4), 0.1, 3)
    with pytest.raises(ValueError, match="probability"):
        DropBlock2d(1.5, 3)
    with pytest.raises(ValueError, match="block_size"):
        DropBlock2d(0.1, 0)
