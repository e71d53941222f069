"""sum, max, min and mean in C against NumPy's kernels, with the size threshold at zero: reduced axes of
every pattern, keepdim, empty inputs, and dtypes C does not take."""

import numpy as np
import pytest
from neurenix_backend_cpu import KERNELS

from .conftest import DTYPES, check, rand

pytestmark = pytest.mark.usefixtures("everything_in_c")

AXES = [((3, 4, 5), (0, 2)), ((3, 4, 5), (1,)), ((3, 4, 5), (0,)), ((3, 4, 5), (2,)), ((3, 4, 5), (0, 1, 2)),
        ((2, 3, 4, 5), (0, 2, 3)), ((2, 1, 4), (1,)), ((2, 3, 4, 5), (1, 3)), ((1,), (0,)), ((1, 1), (1,))]
# max and min of empty tensors are refused by core, and their mean is NaN with a warning: only sum gets one
CASES = [(kernel, *case) for kernel in ("sum", "mean", "max", "min") for case in AXES] + [("sum", (3, 0, 2), (1,))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("kernel", "shape", "axes"), CASES, ids=str)
def test_reductions_over_axes(kernel, shape, axes, dtype):
    for keepdim in (False, True):
        check(kernel, rand(*shape, dtype=dtype), axes, keepdim, dtype=dtype)


def test_other_dtypes_fall_through_to_numpy():
    i = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(KERNELS["sum"](i, (1,), False), i.sum(1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", ["max", "min"])
@pytest.mark.parametrize("nan_at", [None, 0, 77777, -1])
def test_whole_tensor_extremes_split_over_threads(kernel, nan_at, dtype):
    """max and min of long rows (a whole tensor: the row split over threads in vector lanes) give NumPy's value,
    and NaN wherever one is."""
    x = rand(3, 100_000, dtype=dtype)
    if nan_at is not None:
        x[1, nan_at] = np.nan
    for shape, axes in (((300_000,), (0,)), ((3, 100_000), (1,))):
        got = KERNELS[kernel](x.reshape(shape), axes, False)
        np.testing.assert_array_equal(got, getattr(np, kernel)(x.reshape(shape), axis=axes[0]))
