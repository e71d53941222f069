"""``neurenix.compile`` on an emulated ROCm device: the runner neurenix_gpu shares with CUDA, over HIP's stand-ins
(launches through ``hipModuleLaunchKernel``, GEMMs through rocBLAS's), computes what core's replay does."""

import numpy as np
from neurenix_gpu.program import ProgramRunner

import neurenix as nx
from neurenix.capture.program import replay


def step(w, x, y):
    loss = ((x @ w).tanh() - y).pow(2).mean()
    g, = nx.autograd.grad(loss, [w], create_graph=True)
    return (w - 0.1 * g).sum(dim=0).detach(), loss.detach()


def test_the_runner_computes_what_core_replays(emulated_rocm):
    rng = np.random.default_rng(0)
    w = nx.tensor(rng.standard_normal((4, 3)).astype(np.float32), device="rocm_emu", requires_grad=True)
    x, y = (nx.tensor(rng.standard_normal(s).astype(np.float32), device="rocm_emu") for s in ((5, 4), (5, 3)))
    compiled = nx.compile(step, backend=False)
    compiled(w, x, y)
    program, = compiled.programs()
    inputs = [t._data for t in (w, x, y)]
    run = ProgramRunner(program, emulated_rocm)
    want = [b.device.download(b).tobytes() for b in replay(program)(inputs)]
    for _ in range(3):
        assert [b.device.download(b).tobytes() for b in run(inputs)] == want
    assert run.plan is not None and any(s[0] == 1 for s in run.plan.steps)  # a GEMM issued from the plan
