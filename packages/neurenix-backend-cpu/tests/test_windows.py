"""unfold, fold and max pooling in C against NumPy's kernels and core's compositions: window geometries
(kernel, stride, padding, dilation), non-contiguous and empty inputs, NaN and ties in pooling windows."""

import numpy as np
import pytest
from neurenix_backend_cpu import KERNELS

from .conftest import DTYPES, REF, check, rand

pytestmark = pytest.mark.usefixtures("everything_in_c")

GEOMETRIES = [((3, 3), (1, 1), (1, 1), (1, 1)), ((2, 2), (2, 2), (0, 0), (1, 1)), ((3, 2), (2, 1), (1, 0), (1, 2)),
              ((2, 3), (1, 2), (1, 1), (2, 1))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
def test_windows(geometry, dtype):
    ks, _, pd, _ = geometry
    x = rand(2, 3, 7, 6, dtype=dtype)
    check("unfold", x, *geometry, dtype=dtype)
    check("unfold", x.transpose(0, 1, 3, 2), *geometry, dtype=dtype)  # non-contiguous: copied first
    cols = REF["unfold"](x, *geometry)
    check("fold", rand(*cols.shape, dtype=dtype), (7, 6), *geometry, dtype=dtype)
    check("unfold_batch", x, *geometry, dtype=dtype)
    check("unfold_batch", x.transpose(0, 1, 3, 2), *geometry, dtype=dtype)
    side_by_side = rand(cols.shape[1], cols.shape[0] * cols.shape[2], dtype=dtype)
    check("fold_batch", side_by_side, (7, 6), *geometry, dtype=dtype)
    check("fold_batch", np.asfortranarray(side_by_side), (7, 6), *geometry, dtype=dtype)  # copied first
    if pd[0] <= ks[0] // 2 and pd[1] <= ks[1] // 2:
        check("max_pool2d", x, *geometry, dtype=dtype)
        out, idx = REF["max_pool2d"](x, *geometry)
        check("max_pool2d_backward", rand(*out.shape, dtype=dtype), idx, (7, 6), *geometry, dtype=dtype)


# stride 1 with windows as wide as the image (ow == w): unfold copies, and fold adds, a kernel element's rows in
# one flat span (csrc/windows.h unfold_flat, fold_flat); kernel rows and columns that read only padding, more
# wrapped columns than fold_flat saves (the 5x5 kernel on 40 rows: 2 a row), and h != oh
SAME_WINDOWS = [((3, 3), (1, 1)), ((5, 5), (2, 2)), ((3, 3), (3, 3)), ((3, 1), (1, 0)), ((1, 3), (2, 1)),
                ((2, 2), (1, 1))]


def _same_width(window, dilation, size) -> bool:
    (kh, kw), (ph, pw) = window
    h, w = size
    return (w + 2 * pw - dilation[1] * (kw - 1) - 1) + 1 == w and h + 2 * ph - dilation[0] * (kh - 1) >= 1


# the geometries where ow == w (others take the general path, tested with every op's cases)
SAME_WIDTH = [pytest.param(window, dilation, size, id=f"{window}-{dilation}-{size}") for window in SAME_WINDOWS
              for dilation in [(1, 1), (2, 1), (1, 3)] for size in [(7, 6), (1, 1), (2, 3), (40, 9)]
              if _same_width(window, dilation, size)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("window", "dilation", "size"), SAME_WIDTH)
def test_same_windows_flat_paths_exact(window, dilation, size, dtype):
    """unfold is a copy and fold sums each element's terms in the row-by-row loop's order: both exact."""
    (kh, kw), (ph, pw) = window
    h, w = size
    geometry = ((kh, kw), (1, 1), (ph, pw), dilation)
    x = rand(2, 3, h, w, dtype=dtype)
    for name in ("unfold", "unfold_batch"):
        np.testing.assert_array_equal(KERNELS[name](x, *geometry), REF[name](x, *geometry))
    cols = REF["unfold"](x, *geometry)
    g = rand(*cols.shape, dtype=dtype)
    np.testing.assert_array_equal(KERNELS["fold"](g, (h, w), *geometry), REF["fold"](g, (h, w), *geometry))
    side = rand(cols.shape[1], cols.shape[0] * cols.shape[2], dtype=dtype)
    np.testing.assert_array_equal(KERNELS["fold_batch"](side, (h, w), *geometry),
                                  REF["fold_batch"](side, (h, w), *geometry))


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_2x2_fast_path_nan_and_ties(dtype):
    x = rand(3, 2, 6, 8, dtype=dtype)
    x[0, 0, 0, 1] = x[1, 1, 3, 2] = np.nan  # NaN wins its window, as NumPy's max and argmax
    x[2, 0, 2:4, 4:6] = 1.5  # a tie: the first maximum
    check("max_pool2d", x, (2, 2), (2, 2), (0, 0), (1, 1), dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [(7, 7), (3, 3), (5, 9), (28, 28), (4, 2050), (2, 4100)], ids=str)
def test_max_pool_2x2_many_ties_odd_and_wide_images(size, dtype):
    """Few distinct values (ties in every order) and NaNs, on odd sizes (the last row and column are left out)
    and on rows wider than the kernel's vertical block (its scalar path)."""
    x = np.random.default_rng(0).integers(0, 3, (2, 3, *size)).astype(dtype)
    x[np.random.default_rng(1).random(x.shape) < 0.05] = np.nan
    check("max_pool2d", x, (2, 2), (2, 2), (0, 0), (1, 1), dtype=dtype)


def test_max_pool_ties_pick_the_first_maximum():
    x = np.zeros((1, 1, 2, 2))
    _, idx = KERNELS["max_pool2d"](x, (2, 2), (2, 2), (0, 0), (1, 1))
    assert idx.tolist() == [[[[0]]]]


def test_empty_windows():
    check("unfold", np.zeros((0, 2, 4, 4)), *GEOMETRIES[0], dtype="float64")
    check("unfold_batch", np.zeros((0, 2, 4, 4)), *GEOMETRIES[0], dtype="float64")
    check("fold_batch", np.zeros((18, 0)), (4, 4), *GEOMETRIES[0], dtype="float64")
