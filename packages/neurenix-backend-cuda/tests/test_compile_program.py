"""``neurenix.compile`` on emulated CUDA devices: the backend's runner (neurenix_gpu.program) computes what core's
replay of the same program does, bit for bit, issuing each launch and GEMM with at most 5 Python frames.

What is counted (``sys.setprofile``): every "call" event while a later call of the runner runs, the runner's own
frame included, up to and including the stand-in's entry point (``cuLaunchKernel``, the cuBLAS GEMM); what the
stand-in runs beneath is the vendor library's work (C on a real machine) and is not counted."""

import sys
from pathlib import Path

import numpy as np
import pytest
from neurenix_gpu.program import ProgramRunner
from neurenix_gpu.testing import serving
from neurenix_gpu.testing.emulator import Emulator

import neurenix as nx
from neurenix.capture.program import replay

from .conftest import emulated_backend

MAX_FRAMES = 5
VENDOR = (str(Path(__file__).with_name("stand_ins.py")), str(Path(Emulator.__init__.__code__.co_filename).parent))


@pytest.fixture(scope="module", params=["tiled", "cublas"])
def backend(request):
    with serving(emulated_backend(Emulator(), "cuda_prog", blas=request.param == "cublas"), "cuda_prog") as b:
        yield b


def tensor(rng, *shape, grad=False):
    return nx.tensor(rng.standard_normal(shape).astype(np.float32), device="cuda_prog", requires_grad=grad)


def elementwise(a, b):
    return ((a + b) * a).tanh() - 1.0, (a > b).float() * 2.0


def reductions(a, b):
    return a.sum(dim=1), (a * b).max(dim=0).values, a.argmax(dim=1), a.mean()


def matmul(a, b):
    return (a @ b.T).relu() @ b, (a @ b.T).sum()


def maml(w1, b1, w2, b2, x, y, xq, yq):
    """One MAML step of a small MLP: an inner SGD step, the outer loss through it (second-order gradients)."""
    params = [w1, b1, w2, b2]

    def f(p, x):
        return (x @ p[0] + p[1]).tanh() @ p[2] + p[3]
    g = nx.autograd.grad(((f(params, x) - y) ** 2).mean(), params, create_graph=True)
    q = ((f([p - 0.1 * gi for p, gi in zip(params, g)], xq) - yq) ** 2).mean()
    q.backward()
    return q.detach()


def gather(a, idx):
    """An index check (a host step) and advanced indexing (the index read on the host): steps called as they are."""
    return a[idx] * 2.0 + a.sum()


def record(fn, *args):
    """The program ``neurenix.compile`` records for ``fn(*args)``, and the buffers it reads."""
    step = nx.compile(fn, backend=False)
    step(*args)
    program, = step.programs()
    return program, [t._data for t in args]


def host(buffers) -> list[bytes]:
    return [b.device.download(b).tobytes() for b in buffers]


CASES = {
    "elementwise": (elementwise, lambda r: (tensor(r, 4, 3), tensor(r, 3))),
    "reductions": (reductions, lambda r: (tensor(r, 5, 7), tensor(r, 5, 7))),
    "matmul": (matmul, lambda r: (tensor(r, 6, 4), tensor(r, 5, 4))),
    "maml": (maml, lambda r: (tensor(r, 1, 16, grad=True), tensor(r, 16, grad=True), tensor(r, 16, 1, grad=True),
                              tensor(r, 1, grad=True), *(tensor(r, 5, 1) for _ in range(4)))),
}


@pytest.mark.parametrize("case", CASES)
def test_the_runner_computes_what_core_replays(backend, case):
    fn, make = CASES[case]
    program, inputs = record(fn, *make(np.random.default_rng(0)))
    run = ProgramRunner(program, backend)
    want = host(replay(program)(inputs))
    for _ in range(3):  # the first call plans, the later ones run the plan
        assert host(run(inputs)) == want
    assert run.plan is not None and run.launches > 0


def counted_frames(fn, *args) -> tuple[int, int]:
    """(Python frames entered while ``fn(*args)`` runs, calls into the stand-in libraries), see the docstring."""
    frames, calls, inside = [0], [0], [None]

    def profile(frame, event, arg):
        if inside[0] is not None:
            if event == "return" and frame is inside[0]:
                inside[0] = None
            return
        if event == "call":
            frames[0] += 1
            if frame.f_code.co_filename.startswith(VENDOR):
                calls[0] += 1
                inside[0] = frame
    sys.setprofile(profile)
    try:
        result = fn(*args)  # kept: the last call's buffers are freed after the count, not in it
    finally:
        sys.setprofile(None)
    del result
    return frames[0], calls[0]


@pytest.mark.parametrize("case", CASES)
def test_each_launch_takes_at_most_5_python_frames(backend, case):
    fn, make = CASES[case]
    program, inputs = record(fn, *make(np.random.default_rng(1)))
    run = ProgramRunner(program, backend)
    run(inputs)
    frames, calls = counted_frames(run, inputs)
    assert calls == run.launches
    assert frames <= MAX_FRAMES * calls, f"{frames} frames for {calls} launches"


def test_outputs_are_not_overwritten_by_the_next_call(backend):
    rng = np.random.default_rng(2)
    program, inputs = record(matmul, tensor(rng, 6, 4), tensor(rng, 5, 4))
    _, others = record(matmul, tensor(rng, 6, 4), tensor(rng, 5, 4))
    run = ProgramRunner(program, backend)
    run(inputs)
    first = run(inputs)
    kept = host(first)
    second = run(others)
    assert host(first) == kept and host(second) != kept
    assert host(second) == host(replay(program)(others))


def test_host_steps_and_unplannable_kernels_are_called_as_they_are(backend):
    rng = np.random.default_rng(3)
    a, idx = tensor(rng, 6, 3), nx.tensor(np.array([4, 0, 4]), device="cuda_prog")
    program, inputs = record(gather, a, idx)
    assert any(ins.host for ins in program.instructions)
    run = ProgramRunner(program, backend)
    want = host(replay(program)(inputs))
    assert host(run(inputs)) == want and host(run(inputs)) == want
    kinds = {step[0] for step in run.plan.steps}
    assert {0, 2} <= kinds  # launches from the plan, and steps called as they are
    step = nx.compile(gather)
    step(a, idx), step(a, idx)  # traced, then planned
    bad = nx.tensor(np.array([4, 6, 0]), device="cuda_prog")
    with pytest.raises(IndexError):  # the index check still runs at each call of the plan
        step(a, bad).numpy()
    nx.Device("cuda_prog").checks.clear()  # (the indexing kernel itself raised first: its queued check is moot)
    assert isinstance(next(iter(step._cache.values())).runner, ProgramRunner)


def test_neurenix_compile_uses_the_runner(backend):
    rng = np.random.default_rng(4)
    a, b = tensor(rng, 4, 3), tensor(rng, 3)
    step = nx.compile(elementwise)
    want = [t.numpy() for t in elementwise(a, b)]
    for _ in range(3):
        got = [t.numpy() for t in step(a, b)]
        assert all(x.tobytes() == y.tobytes() for x, y in zip(got, want))
    entry, = step._cache.values()
    assert isinstance(entry.runner, ProgramRunner) and entry.runner.plan is not None
