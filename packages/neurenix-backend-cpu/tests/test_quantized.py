"""The int8 kernels in C (quantized_linear, quantized_conv2d) against core's float64 compositions, on every path this
CPU runs (AVX-512 VNNI or aarch64 dotprod, and the generic one): odd row lengths, empty and single rows, saturating
and infinite inputs, extreme zero points, conv geometries; and the fallbacks C does not take."""

import ctypes
import os
import pathlib
import platform
import subprocess
import sys

import numpy as np
import pytest
from neurenix_backend_cpu import KERNELS, quantized

from neurenix.backend import reference

REF = reference()
FAST = quantized.isa()  # the best path here (quantized.py may have been told generic: then only that one)
PATHS = sorted({"generic", FAST})


@pytest.fixture(params=PATHS)
def path(request):
    assert quantized.use_isa(request.param)
    yield request.param
    quantized.use_isa(FAST)


def operands(x_shape, w_shape, seed=0, scale=1.0, bias=True):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(x_shape) * scale).astype(np.float32)
    wq = rng.integers(-128, 128, w_shape, dtype=np.int8)
    w_scale = (rng.random(w_shape[0]) * 0.02 + 1e-3).astype(np.float32)
    b = rng.standard_normal(w_shape[0]).astype(np.float32) if bias else None
    return x, wq, w_scale, b


def same(got, want):
    """Equal to float32 rounding: the integer sums are exact, so only the dequantizing multiply-add may round
    differently."""
    assert got.dtype == np.float32 and got.shape == want.shape and got.flags.c_contiguous
    tol = 1e-6 * float(np.abs(want).max()) if want.size else 0.0
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=tol)


@pytest.mark.parametrize("zp", [-128, 0, 3, 127])
@pytest.mark.parametrize(("x_shape", "n_out"), [
    ((5, 37), 7), ((64, 1600), 64), ((1, 3), 1), ((17, 129), 33), ((8, 64), 4), ((3, 65), 5), ((2, 31), 9),
    ((0, 16), 4), ((16,), 6), ((2, 3, 50), 11), ((33, 300), 1)], ids=str)
def test_linear(x_shape, n_out, zp, path):
    x, wq, w_scale, b = operands(x_shape, (n_out, x_shape[-1]), scale=3.0)
    same(KERNELS["quantized_linear"](x, wq, w_scale, b, 0.05, zp), REF.quantized_linear(x, wq, w_scale, b, 0.05, zp))


@pytest.mark.parametrize("zp", [-128, 0, 3, 127])
@pytest.mark.parametrize(("x_shape", "n_out"), [
    ((1, 1), 1), ((1, 100), 7), ((2, 200), 10), ((3, 77), 13), ((1, 1024), 1024), ((2, 1000), 998), ((3, 63), 4),
    ((1, 65), 5), ((3, 129), 6), ((2, 1, 333), 9), ((1, 2100), 1030)], ids=str)
def test_linear_few_rows(x_shape, n_out, zp, path):
    """Fewer than 4 rows take their own kernel (W read once, unpadded): row lengths not a multiple of a vector,
    output channels not a multiple of 4, and 1 x 2100 -> 1030, enough multiply-adds for OpenMP threads."""
    x, wq, w_scale, b = operands(x_shape, (n_out, x_shape[-1]), seed=5, scale=3.0)
    x.reshape(-1)[-3:] = [np.inf, -np.inf, 1e30][-x.size:]
    for bias in (b, None):
        with np.errstate(over="ignore"):
            want = REF.quantized_linear(x, wq, w_scale, bias, 0.05, zp)
        same(KERNELS["quantized_linear"](x, wq, w_scale, bias, 0.05, zp), want)


def test_linear_few_rows_as_tiles(path):
    """The rows' kernel gives the tiles' results bit for bit: one row alone is the first row of 4 copies of it."""
    x, wq, w_scale, b = operands((3, 517), (37, 517), seed=6, scale=3.0)
    for m in (1, 2, 3):
        tiles = KERNELS["quantized_linear"](np.concatenate([x[:m], x[:m], x[:m], x[:m]]), wq, w_scale, b, 0.05, -7)
        np.testing.assert_array_equal(KERNELS["quantized_linear"](x[:m], wq, w_scale, b, 0.05, -7), tiles[:m])


@pytest.mark.parametrize("zp", [-128, 0, 127])
def test_linear_saturates(zp, path):
    """Inputs far beyond the quantized range, infinities among them, clamp to -128 and 127; no bias."""
    x, wq, w_scale, _ = operands((9, 70), (13, 70), scale=1e4)
    x[0, :5] = np.inf
    x[1, 3:9] = -np.inf
    x[2] = np.float32(3.4e38)  # x / x_scale overflows to infinity, and saturates as well
    with np.errstate(over="ignore"):
        want = REF.quantized_linear(x, wq, w_scale, None, 0.5, zp)
    same(KERNELS["quantized_linear"](x, wq, w_scale, None, 0.5, zp), want)


def test_linear_rounds_half_to_even(path):
    """x / x_scale exactly halfway between integers rounds to the even one, as rint does."""
    x = (np.arange(-8, 8, dtype=np.float32) + 0.5).reshape(1, 16) * np.float32(0.25)
    wq = np.eye(16, dtype=np.int8)
    y = KERNELS["quantized_linear"](x, wq, np.ones(16, np.float32), None, 0.25, 0)
    np.testing.assert_array_equal(y[0], np.rint(np.arange(-8, 8) + 0.5) * 0.25)  # -8, -6, -6, -4, ... 8 quarters


@pytest.mark.parametrize("zp", [-128, 0, 127])
@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "padding", "dilation"), [
    ((3, 5, 11, 13), (6, 5, 3, 2), (1, 1), (0, 0), (1, 1)),
    ((3, 5, 11, 13), (6, 5, 3, 2), (2, 1), (1, 2), (1, 2)),
    ((2, 4, 12, 9), (5, 4, 3, 3), (1, 3), (2, 0), (2, 1)),
    ((4, 3, 16, 16), (8, 3, 3, 3), (1, 1), (1, 1), (1, 1)),  # a first layer: rows of 27 bytes
    ((2, 16, 8, 8), (16, 16, 3, 3), (1, 1), (1, 1), (1, 1)),
    ((1, 20, 9, 7), (3, 20, 1, 1), (1, 1), (0, 0), (1, 1)),  # 1x1, one image
    ((2, 2, 5, 5), (1, 2, 5, 5), (1, 1), (4, 4), (1, 1)),  # mostly padding, one output channel
    ((0, 3, 8, 8), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1)),  # no images
    ((2, 48, 6, 7), (5, 48, 3, 3), (1, 1), (1, 1), (1, 1)),  # rows of 432 bytes: VNNI's tiles, not pixel lanes
    ((1, 48, 9, 9), (7, 48, 3, 3), (2, 2), (0, 1), (1, 1)),
    ((3, 7, 20, 20), (9, 7, 3, 3), (1, 1), (1, 1), (1, 1)),  # 400 pixels: blocks of 64 and a tail of 16
], ids=str)
def test_conv2d(x_shape, w_shape, stride, padding, dilation, zp, path):
    x, wq, w_scale, b = operands(x_shape, w_shape, seed=1, scale=2.0)
    args = (x, wq, w_scale, b, 0.03, zp, stride, padding, dilation, 1)
    same(KERNELS["quantized_conv2d"](*args), REF.quantized_conv2d(*args))


def test_conv2d_batch_on_threads(path):
    """Enough work for the images to go to OpenMP threads (Conv-4's inner layer on 8 images of 21x21), and a
    single large image, whose rows do."""
    for shape in ((8, 64, 21, 21), (1, 64, 42, 42)):
        x, wq, w_scale, b = operands(shape, (64, 64, 3, 3), seed=2)
        x[0, 0, :2, :2] = [[np.inf, -np.inf], [1e30, -1e30]]
        args = (x, wq, w_scale, b, 0.02, -5, (1, 1), (1, 1), (1, 1), 1)
        same(KERNELS["quantized_conv2d"](*args), REF.quantized_conv2d(*args))


def test_fallbacks():
    """Grouped convolutions, non-contiguous inputs and float64 take core's compositions: same results."""
    x, wq, w_scale, b = operands((2, 4, 7, 7), (6, 2, 3, 3), seed=3)
    args = (x, wq, w_scale, b, 0.05, 1, (1, 1), (1, 1), (1, 1), 2)
    same(KERNELS["quantized_conv2d"](*args), REF.quantized_conv2d(*args))
    x, wq, w_scale, b = operands((40, 6), (5, 20), seed=4)
    xt = x.T  # (6, 40) as a transposed view
    same(KERNELS["quantized_linear"](xt[:, :20], wq, w_scale, b, 0.1, 0), REF.quantized_linear(
        np.ascontiguousarray(xt[:, :20]), wq, w_scale, b, 0.1, 0))


def test_use_isa():
    assert quantized.use_isa("generic") and quantized.isa() == "generic"
    assert not quantized.use_isa("no-such-path") and quantized.isa() == "generic"
    assert quantized.use_isa("auto") and quantized.isa() == quantized.best()
    quantized.use_isa(FAST)


def test_isa_follows_cpu():
    """The VNNI path where /proc/cpuinfo lists avx512_vnni; on aarch64 dotprod where the kernel's hardware
    capabilities have asimddp (asked through getauxval: under QEMU's user mode /proc/cpuinfo is the host's)."""
    if platform.machine().lower() in ("aarch64", "arm64"):
        hwcap = ctypes.CDLL(None).getauxval
        hwcap.restype, hwcap.argtypes = ctypes.c_ulong, [ctypes.c_ulong]
        assert quantized.best() == ("dotprod" if hwcap(16) & (1 << 20) else "generic")  # AT_HWCAP, HWCAP_ASIMDDP
        return
    flags = set()
    cpuinfo = pathlib.Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else ():
        if line.startswith("flags"):
            flags |= set(line.split(":", 1)[1].split())
    assert quantized.best() == ("avx512vnni" if {"avx512_vnni", "avx512bw"} <= flags else "generic")


def test_environment_forces_generic():
    """NEURENIX_CPU_INT8=generic, read at import, is how a user (or CI) compares the paths on one machine."""
    env = {**os.environ, "NEURENIX_CPU_INT8": "generic"}
    out = subprocess.run([sys.executable, "-c", "from neurenix_backend_cpu import quantized; print(quantized.isa())"],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["generic"]
