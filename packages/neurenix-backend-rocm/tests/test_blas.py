"""rocBLAS through the fake one: its names and enums (rocblas_operation 111/112) in the shared GEMM helper,
against NumPy; and without librocblas, the tiled kernel."""

import numpy as np
import pytest
from neurenix_gpu.testing.emulator import Emulator

from .conftest import emulated_backend

M, K, N = 3, 5, 4  # all different: a swapped size or leading dimension is refused or gives wrong values


def _rand(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _tol(dtype) -> dict:
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_against_numpy(dtype, trans_a, trans_b):
    backend = emulated_backend(Emulator(), blas=True)
    dev = backend.device(0)
    a = _rand((2, K, M) if trans_a else (2, M, K), dtype, 1)
    b = _rand((N, K) if trans_b else (K, N), dtype, 2)  # one matrix for both batches: stride 0
    out = dev.upload(np.full((2, M, N), np.nan, dtype))
    assert backend.driver.blas.gemm(dev, np.dtype(dtype), 2, M, N, K, dev.upload(a), M * K, dev.upload(b), 0, out,
                                    trans_a, trans_b)
    want = np.matmul(a.swapaxes(1, 2) if trans_a else a, b.T if trans_b else b)
    np.testing.assert_allclose(dev.download(out), want, **_tol(dtype))
    assert backend.driver.blas.lib.calls[-1][1:3] == (112 if trans_b else 111, 112 if trans_a else 111)


@pytest.mark.parametrize("blas", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batched_broadcast_matmul(blas, dtype):
    """Through the kernel table, with rocBLAS and without (the tiled kernel)."""
    backend = emulated_backend(Emulator(), blas=blas)
    assert (backend.driver.blas is None) != blas
    k = backend.kernels()
    a, b = _rand((3, 1, M, K), dtype, 3), _rand((2, N, K), dtype, 4)
    y = k["permute"](k["from_numpy"](b, 0), (0, 2, 1))
    out = k["to_numpy"](k["matmul"](k["from_numpy"](a, 0), y))
    np.testing.assert_allclose(out, np.matmul(a, b.swapaxes(1, 2)), **_tol(dtype))
    tiled = "matmul_f32" in backend.device(0)._functions or "matmul_f64" in backend.device(0)._functions
    assert tiled != blas and (not blas or len(backend.driver.blas.lib.calls) == 1)
