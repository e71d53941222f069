"""The per-op path: ``a + b`` on two tensors of an emulated CUDA device reaches the driver's ``cuLaunchKernel``
within 15 Python frames, the host layer trusting what core guarantees (dtypes promoted and equal, shapes
that broadcast) instead of working it out again.

What is counted (``sys.setprofile``): every "call" event, i.e. each Python function, method, comprehension
or generator step entered or resumed, from entering ``Tensor.__add__`` through entering the stand-in's
``cuLaunchKernel``, both included. Calls into C (builtins, NumPy's and cffi's C functions) are not Python
frames and are not counted. The shapes have been seen once before, as in a training loop: the first op on
new shapes works out its launch plan (and the device compiles its kernels on first use)."""

import sys

import numpy as np
import pytest
from neurenix_gpu.testing import serving
from neurenix_gpu.testing.emulator import Emulator

import neurenix as nx
from neurenix import Tensor

from .conftest import emulated_backend
from .stand_ins import FakeCuda

MAX_FRAMES = 15


@pytest.fixture(scope="module")
def device():
    with serving(emulated_backend(Emulator(), "cuda_path"), "cuda_path"):
        yield "cuda_path"


def frames_to_launch(fn, *args) -> list[str]:
    """The Python frames entered from ``Tensor.__add__`` to ``cuLaunchKernel`` while ``fn(*args)`` runs."""
    start, stop = Tensor.__add__.__code__, FakeCuda.cuLaunchKernel.__code__
    frames, counting = [], [False]

    def profile(frame, event, arg):
        if event != "call":
            return
        code = frame.f_code
        counting[0] = counting[0] or code is start
        if counting[0]:
            frames.append(f"{code.co_filename.rsplit('/', 1)[-1]}:{code.co_name}")
            counting[0] = code is not stop
    sys.setprofile(profile)
    try:
        fn(*args)
    finally:
        sys.setprofile(None)
    assert frames and frames[-1].endswith(":cuLaunchKernel"), f"no launch was reached: {frames}"
    return frames


@pytest.mark.parametrize("shape_a, shape_b", [((4, 3), (4, 3)), ((4, 3), (3,)), ((2, 1, 5), (3, 1))])
def test_add_reaches_the_launch_within_the_frame_budget(device, shape_a, shape_b):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(shape_a).astype(np.float32), rng.standard_normal(shape_b).astype(np.float32)
    a, b = nx.tensor(x, device=device), nx.tensor(y, device=device)
    np.testing.assert_array_equal((a + b).numpy(), x + y)  # the plan made, the kernels compiled
    frames = frames_to_launch(lambda: a + b)
    assert len(frames) <= MAX_FRAMES, f"{len(frames)} frames: {frames}"


def test_the_count_sees_a_longer_path(device):
    """The counter itself: promoting first (int64 + float32: core casts, and the cast launches) takes more."""
    a, b = nx.ones((4, 3), device=device, dtype=nx.int64), nx.ones((4, 3), device=device)
    a + b
    assert len(frames_to_launch(lambda: a + b)) > MAX_FRAMES
