"""The backend's cuBLAS calls (neurenix_gpu.blas, shared with rocBLAS) against NumPy, through the fake cuBLAS:
argument order, transposes, leading dimensions, batch strides, and the row-major to column-major swap.
M, K, N differ from each other, so a swapped size or leading dimension is refused or gives wrong values."""

import numpy as np
import pytest
from neurenix_backend_cuda.cuda import ffi
from neurenix_gpu import GpuError
from neurenix_gpu.testing.emulator import Emulator

from .conftest import emulated_backend
from .stand_ins import fake_cublas

M, K, N = 3, 5, 4
DTYPES = [np.float32, np.float64]


def _tol(dtype) -> dict:
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}


def _rand(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.fixture(scope="module")
def backend():
    backend = emulated_backend(Emulator(), blas=True)
    assert backend.unavailable_reason() is None
    return backend


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("batch_a, batch_b", [(2, 2), (2, 1), (1, 2)])  # 1: one matrix for all (stride 0)
def test_gemm_against_numpy(backend, dtype, trans_a, trans_b, batch_a, batch_b):
    dev = backend.device(0)
    a = _rand((batch_a, K, M) if trans_a else (batch_a, M, K), dtype, 1)
    b = _rand((batch_b, N, K) if trans_b else (batch_b, K, N), dtype, 2)
    nb = max(batch_a, batch_b)
    out = dev.upload(np.full((nb, M, N), np.nan, dtype))  # beta is 0: C must not be read
    assert dev.driver.blas.gemm(dev, np.dtype(dtype), nb, M, N, K, dev.upload(a), M * K if batch_a > 1 else 0,
                                dev.upload(b), K * N if batch_b > 1 else 0, out, trans_a, trans_b)
    want = np.matmul(a.swapaxes(1, 2) if trans_a else a, b.swapaxes(1, 2) if trans_b else b)
    np.testing.assert_allclose(dev.download(out), np.broadcast_to(want, (nb, M, N)), **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sa, sb, transpose_b", [
    ((M, K), (K, N), False),
    ((2, 3, M, K), (K, N), False),      # b broadcast over a's batch: stride 0
    ((M, K), (3, K, N), False),         # a broadcast
    ((3, 1, M, K), (1, 2, K, N), False),  # both broadcast: expanded to (3, 2)
    ((2, M, K), (2, N, K), True),       # a @ b^T, b permuted on the device first
])
def test_matmul_goes_through_cublas(backend, dtype, sa, sb, transpose_b):
    k = backend.kernels()
    a, b = _rand(sa, dtype, 3), _rand(sb, dtype, 4)
    x, y = k["from_numpy"](a, 0), k["from_numpy"](b, 0)
    if transpose_b:
        y, b = k["permute"](y, (0, 2, 1)), b.swapaxes(-1, -2)
    calls = len(backend.driver.blas.lib.calls)
    np.testing.assert_allclose(k["to_numpy"](k["matmul"](x, y)), np.matmul(a, b), **_tol(dtype))
    assert len(backend.driver.blas.lib.calls) == calls + 1  # one strided-batched call, not the tiled kernel


def test_integer_matmul_keeps_the_tiled_kernel(backend):
    k = backend.kernels()
    a = np.arange(6, dtype=np.int64).reshape(2, 3)
    calls = len(backend.driver.blas.lib.calls)
    np.testing.assert_array_equal(k["to_numpy"](k["matmul"](k["from_numpy"](a, 0), k["from_numpy"](a.T, 0))), a @ a.T)
    assert len(backend.driver.blas.lib.calls) == calls


def test_handle_bound_to_the_device_stream(backend):
    dev = backend.device(0)
    k = backend.kernels()
    k["matmul"](k["full"]((2, 2), 1.0, np.float32, 0), k["full"]((2, 2), 1.0, np.float32, 0))
    handle = backend.driver.blas._handles[0]
    assert backend.driver.blas.lib.streams[int(ffi.cast("uintptr_t", handle))][1] == int(ffi.cast("uintptr_t",
                                                                                                 dev.stream))


@pytest.mark.parametrize("dtype", DTYPES)
def test_fake_cublas_is_column_major_with_leading_dimensions(dtype):
    """The stand-in itself, on hand-laid column-major data: padded leading dimensions, alpha, beta, op(B) = B^T."""
    emu = Emulator()
    cublas = fake_cublas(emu)
    ct = "float" if dtype == np.float32 else "double"
    lda, ldb, ldc = M + 2, N + 1, M + 3
    a, bt, c0 = _rand((M, K), dtype, 5), _rand((N, K), dtype, 6), _rand((M, N), dtype, 7)
    ptrs = []
    for mat, ld in ((a, lda), (bt, ldb), (c0, ldc)):
        ptr = emu.alloc(ld * mat.shape[1] * np.dtype(dtype).itemsize)
        store = emu.array(ptr, dtype, (mat.shape[1], ld), (ld, 1))  # column j at j * ld
        store[...] = -7.0  # the padding rows must not be read
        store[:, :mat.shape[0]] = mat.T
        ptrs.append(ptr)
    handle = ffi.new("cublasHandle_t*")
    assert cublas.cublasCreate_v2(handle) == 0
    gemm = cublas.cublasSgemmStridedBatched if ct == "float" else cublas.cublasDgemmStridedBatched
    p = [ffi.cast(f"{ct}*", x) for x in ptrs]
    alpha, beta = ffi.new(f"{ct}*", 2.0), ffi.new(f"{ct}*", 0.5)
    assert gemm(handle[0], 0, 1, M, N, K, alpha, p[0], lda, 0, p[1], ldb, 0, beta, p[2], ldc, 0, 1) == 0
    c = emu.array(ptrs[2], dtype, (N, ldc), (ldc, 1))
    np.testing.assert_allclose(c[:, :M].T, 2 * a @ bt.T + 0.5 * c0, **_tol(dtype))
    assert (c[:, M:] == -7.0).all()
    # what the real library refuses: a leading dimension below the rows, the other precision's pointers
    assert gemm(handle[0], 0, 1, M, N, K, alpha, p[0], M - 1, 0, p[1], ldb, 0, beta, p[2], ldc, 0, 1) == 7
    other = "double" if ct == "float" else "float"
    with pytest.raises(TypeError, match=f"expected {ct}"):
        gemm(handle[0], 0, 1, M, N, K, alpha, ffi.cast(f"{other}*", ptrs[0]), lda, 0, p[1], ldb, 0, beta, p[2],
             ldc, 0, 1)


def test_a_fault_in_gemm_names_the_call():
    backend = emulated_backend(Emulator(), blas=True)
    dev = backend.device(0)
    small = dev.upload(np.ones((2, 2), np.float32))  # 512 bytes after rounding: a 20 x 20 read runs past it
    with pytest.raises(GpuError, match=r"cublasSgemmStridedBatched failed on cuda_emu:0: status 13 \(batch 1, "
                                       r"m 20, n 20, k 20\)"):
        dev.driver.blas.gemm(dev, np.dtype(np.float32), 1, 20, 20, 20, small, 0, small, 0, small)


def test_without_a_handle_matmul_falls_back_to_the_tiled_kernel():
    backend = emulated_backend(Emulator(), blas=True)
    backend.driver.blas.lib.cublasCreate_v2 = lambda out: 1  # CUBLAS_STATUS_NOT_INITIALIZED
    k = backend.kernels()
    a = _rand((M, K), np.float32)
    out = k["matmul"](k["from_numpy"](a, 0), k["from_numpy"](a.T.copy(), 0))
    np.testing.assert_allclose(k["to_numpy"](out), a @ a.T, **_tol(np.float32))
    assert "matmul_f32" in backend.device(0)._functions and "cublasCreate_v2" in backend.driver.blas.reason
