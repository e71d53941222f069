"""sum, max, min and mean in C against NumPy's kernels, with the size threshold at zero: reduced axes of
every pattern, keepdim, empty inputs, and dtypes C does not take."""

import numpy as np
import pytest
from neurenix_backend_cpu import KERNELS

from .conftest import DTYPES, check, rand

pytestmark = pytest.mark.usefixtures("everything_in_c")

AXES = [((3, 4, 5), (0, 2)), ((3, 4, 5), (1,)), ((3, 4, 5), (0,)), ((3, 4, 5), (2,)), ((3, 4, 5), (0, 1, 2)),
        ((2, 3, 4, 5), (0, 2, 3)), ((2, 1, 4), (1,)), ((2, 3, 4, 5), (1, 3))]
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
