"""Core's NumPy kernels where they leave NumPy's own path (results must not change)."""

import numpy as np
import pytest

from neurenix.backend import numpy_backend


@pytest.mark.parametrize("sa, sb", [((3, 4, 5), (3, 6, 5)), ((1, 3, 4, 5), (2, 1, 6, 5)), ((2, 3, 4, 5), (2, 3, 6, 5)),
                                    ((3, 40, 5), (3, 2, 5))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_with_a_stack_of_transposed_views(sa, sb, dtype):
    rng = np.random.default_rng(0)
    a, b = rng.random(sa).astype(dtype), rng.random(sb).astype(dtype).swapaxes(-1, -2)
    out = numpy_backend.matmul(a, b)
    assert out.dtype == dtype and out.shape == np.matmul(a, b).shape
    np.testing.assert_allclose(out, np.matmul(a, b), rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("sa, sb", [((3, 40), (7, 40)), ((7, 40), (3, 40)), ((3, 5), (7, 5)), ((1, 8), (8, 8))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_with_a_transposed_view(sa, sb, dtype):
    """a @ b.T, which takes the operands in swapped order when b has more rows (a conv's weight gradient)."""
    rng = np.random.default_rng(0)
    a, b = rng.random(sa).astype(dtype), rng.random(sb).astype(dtype).T
    out = numpy_backend.matmul(a, b)
    assert out.dtype == dtype and out.flags.c_contiguous
    np.testing.assert_allclose(out, a @ b, rtol=1e-5 if dtype == np.float32 else 1e-12)
