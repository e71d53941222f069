"""The webgpu backend's runner for compiled programs (``compile_program``): programs recorded on webgpu give
what core's replay gives, bit for bit; a replay submits nothing by itself; outputs survive the next replay."""

import os
import warnings

import numpy as np
import pytest

import neurenix as nx
from neurenix.capture.program import replay


@pytest.fixture(scope="module")
def rt():
    status = next((s for s in nx.list_backends() if s.device_type == "webgpu"), None)
    required = [r.strip() for r in os.environ.get("NEURENIX_REQUIRE_BACKENDS", "").split(",")]
    if (status is None or not status.available) and "webgpu" not in required:
        pytest.skip(f"webgpu cannot run here: {status.reason if status else 'backend not installed'}")
    nx.Device("webgpu").check()
    from neurenix_backend_webgpu import kernels
    return kernels.RT


def _bits(buffers, rt) -> list:
    """The outputs' bits (NaNs compare equal to themselves, -0.0 differs from 0.0)."""
    return [(b.shape, b.dtype, rt.read(b).tobytes()) for b in buffers]


def _traced(fn, *args):
    """``fn`` compiled with core's replay only, called once (traced): its program and the compiled function."""
    step = nx.compile(fn, backend=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", nx.CaptureWarning)
        step(*args)
    (program,) = step.programs()
    return program


def _runner(program):
    from neurenix_backend_webgpu.plugin import WebGPUBackend
    runner = WebGPUBackend().compile_program(program)
    assert runner is not None
    return runner


def _same_as_replay(rt, fn, *tensors, calls=3):
    """Trace ``fn(*tensors)``, then run its program through core's replay and the backend's runner ``calls``
    times on the same inputs (the first call plans, the next ones replay the plan): equal bits each time."""
    program = _traced(fn, *tensors)
    inputs = [t._data for t in tensors]
    core, runner = replay(program), _runner(program)
    for _ in range(calls):
        assert _bits(runner(inputs), rt) == _bits(core(inputs), rt)
    return runner


def test_elementwise_and_broadcasting(rt):
    x = nx.tensor(np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4), device="webgpu")
    b = nx.tensor(np.array([0.5, -1.0, 2.0, 0.0], np.float32), device="webgpu")
    runner = _same_as_replay(rt, lambda x, b: ((x * b + 1).exp() - x.relu() / (b.abs() + 1)).tanh(), x, b)
    assert runner.info["fallbacks"] == runner.info["steps"] == 0 and runner.info["segments"] == 1


def test_reductions_and_comparisons(rt):
    x = nx.tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 7, device="webgpu")
    _same_as_replay(rt, lambda x: (x.sum(1), x.max(2), x.mean((0, 2)), (x > 0).sum(), x.argmax(1)), x)


def test_matmul_permute_cat(rt):
    a = nx.tensor(np.random.default_rng(0).standard_normal((3, 5, 7)).astype(np.float32), device="webgpu")
    b = nx.tensor(np.random.default_rng(1).standard_normal((7, 6)).astype(np.float32), device="webgpu")
    _same_as_replay(rt, lambda a, b: nx.cat([a @ b, (a @ b).permute(0, 2, 1).reshape(3, 5, 6)], 1), a, b)


def test_outputs_that_are_inputs_or_reshapes(rt):
    x = nx.tensor(np.arange(6, dtype=np.float32), device="webgpu")
    _same_as_replay(rt, lambda x: (x, x.reshape(2, 3), (x + 1).reshape(3, 2), x + 1), x)


def test_second_order_maml_step(rt):
    """Gradients of gradients through a small MLP's inner step: what MAML's meta-gradient computes."""
    from neurenix.nn import functional as F
    rng = np.random.default_rng(0)
    w1 = nx.tensor(rng.standard_normal((1, 8)).astype(np.float32), device="webgpu", requires_grad=True)
    w2 = nx.tensor(rng.standard_normal((8, 1)).astype(np.float32), device="webgpu", requires_grad=True)
    x = nx.tensor(rng.standard_normal((5, 1)).astype(np.float32), device="webgpu")
    y = nx.tensor(rng.standard_normal((5, 1)).astype(np.float32), device="webgpu")

    def meta_gradient(w1, w2, x, y):
        inner = F.mse_loss((x @ w1).relu() @ w2, y)
        g1, g2 = nx.autograd.grad(inner, [w1, w2], create_graph=True)
        a1, a2 = w1 - 0.1 * g1, w2 - 0.1 * g2
        outer = F.mse_loss((x @ a1).relu() @ a2, y)
        return [g.detach() for g in nx.autograd.grad(outer, [w1, w2])] + [outer.detach()]

    runner = _same_as_replay(rt, meta_gradient, w1, w2, x, y)
    assert runner.info["fallbacks"] == 0


def test_dropout_draws_fresh_numbers_in_order(rt):
    """Random draws are host steps: run at every replay, in the order core's replay runs them."""
    x = nx.tensor(np.arange(1, 41, dtype=np.float32).reshape(4, 10), device="webgpu")
    fn = lambda x: nx.nn.functional.dropout(x * 2, 0.5, training=True) + 1  # noqa: E731
    program = _traced(fn, x)
    core, runner = replay(program), _runner(program)
    for _ in range(3):
        state = nx.random.get_rng_state()
        ours = _bits(runner([x._data]), rt)
        nx.random.set_rng_state(state)
        assert ours == _bits(core([x._data]), rt)
    assert runner.info["steps"] >= 1 and runner.info["fallbacks"] == 0


def test_bounds_checks_of_each_replay(rt):
    """A queued index check reads its min and max at the next synchronisation: a later replay must not
    overwrite what an earlier one queued."""
    x = nx.tensor(np.arange(10, dtype=np.float32), device="webgpu")
    good = nx.tensor(np.array([1, 3, 9]), device="webgpu")
    bad = nx.tensor(np.array([1, 12, 2]), device="webgpu")
    program = _traced(lambda x, i: x[i] * 2, x, good)
    runner = _runner(program)
    core = replay(program)
    for _ in range(2):
        assert _bits(runner([x._data, good._data]), rt) == _bits(core([x._data, good._data]), rt)
    nx.synchronize("webgpu")
    runner([x._data, bad._data])  # its check is queued ...
    runner([x._data, good._data])  # ... and must still see 12, not this call's indices
    with pytest.raises(IndexError, match="12"):
        nx.synchronize("webgpu")


def test_outputs_are_not_overwritten_by_the_next_replay(rt):
    x = nx.tensor(np.arange(8, dtype=np.float32), device="webgpu")
    y = nx.tensor(np.arange(8, dtype=np.float32) * -3, device="webgpu")
    program = _traced(lambda x: (x * x + 1, (x - 1).reshape(2, 4)), x)
    runner = _runner(program)
    runner([x._data])  # plans
    first = runner([x._data])
    second = runner([y._data])
    assert first[0].gpu is not second[0].gpu
    np.testing.assert_array_equal(rt.read(first[0]), np.arange(8) ** 2 + 1)
    np.testing.assert_array_equal(rt.read(first[1]), (np.arange(8) - 1).reshape(2, 4))
    np.testing.assert_array_equal(rt.read(second[0]), (np.arange(8) * -3.0) ** 2 + 1)


def test_a_replay_submits_nothing_by_itself(rt):
    x = nx.tensor(np.arange(8, dtype=np.float32), device="webgpu")
    runner = _same_as_replay(rt, lambda x: ((x + 1) * 2).sum(), x)
    rt.stats.clear()
    outs = [runner([x._data]) for _ in range(5)]
    assert rt.stats["submits"] == 0 and rt.stats["dispatches"] == 0 and rt.stats["replays_enqueued"] == 5
    assert float(rt.read(outs[0][0])) == 72.0 and rt.stats["submits"] == 1  # the five replays and the read
    assert [float(rt.read(o[0])) for o in outs[1:]] == [72.0] * 4


def test_maml_sine_meta_iteration_at_most_two_submits(rt):
    """neurenix.meta's MAML on sine tasks (a small MLP here), compiled: the runner takes the meta-gradient,
    planned whole, and the meta-iteration (with its loss read and the eager Adam step) submits at most
    twice. The parameters equal an uncompiled run's, bit for bit."""
    from neurenix.meta import MAML, generate_regression_tasks
    tasks = generate_regression_tasks(4, 10, seed=1, device="webgpu")

    def learner():
        nx.manual_seed(0)
        model = nx.nn.Sequential(nx.nn.Linear(1, 8), nx.nn.ReLU(), nx.nn.Linear(8, 1)).to("webgpu")
        maml = MAML(model, inner_lr=0.01, meta_lr=0.001, inner_steps=1)
        return maml, nx.optim.Adam(maml.parameters(), lr=0.001)

    runs = {}
    for compile_ in (False, True):
        maml, opt = learner()
        for _ in range(3):  # trace, plan, replay
            maml.meta_learn(tasks, opt, epochs=1, tasks_per_batch=4, shuffle=False, compile=compile_)
        rt.stats.clear()
        maml.meta_learn(tasks, opt, epochs=1, tasks_per_batch=4, shuffle=False, compile=compile_)
        stats = dict(rt.stats)
        runs[compile_] = ([p.numpy().tobytes() for p in maml.parameters()], stats, maml)
    assert runs[True][0] == runs[False][0]
    stats = runs[True][1]
    assert stats["replays_enqueued"] == 1 and stats["submits"] <= 2
    runners = [e.runner for e in runs[True][2]._compiled_gradient._cache.values() if e.runner.plan is not None]
    assert runners and all(r.info["fallbacks"] == r.info["steps"] == 0 for r in runners)
