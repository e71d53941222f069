"""compile_program: the fused runner computes what core's replay does, bit for bit, and caches its C on disk."""

import os

import numpy as np
import pytest
from neurenix_backend_cpu import compiler, jit
from neurenix_backend_cpu.plugin import CpuBackend

import neurenix as nx
from neurenix.capture.program import replay

DTYPES = ["float32", "float64"]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """A fresh disk cache per test, and modules loaded afresh (so a test sees its own compilations)."""
    monkeypatch.setenv("NEURENIX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NEURENIX_CPU_FUSE", "1")  # (opt-in: see CpuBackend.compile_program)
    monkeypatch.setattr(jit, "_loaded", {})
    return tmp_path / "cache"


def capture(fn, *args):
    """The program neurenix.compile records for ``fn(*args)`` (tensors in, tensors out)."""
    step = nx.compile(fn, backend=False)
    step(*args)
    (program,) = step.programs()
    return program


def buffers(*tensors):
    return [t._data for t in tensors]


def same(program, inputs, exact=True):
    """Run the fused runner (twice: the first run learns signatures) and core's replay; compare."""
    runner = CpuBackend().compile_program(program)
    assert runner is not None
    want = replay(program)(inputs)
    first, got = runner(inputs), runner(inputs)
    for w, f, g in zip(want, first, got):
        assert type(g) is type(w) and np.shape(g) == np.shape(w) and np.asarray(g).dtype == np.asarray(w).dtype
        if exact:
            np.testing.assert_array_equal(f, w)
            np.testing.assert_array_equal(g, w)
        else:
            np.testing.assert_allclose(g, w, rtol=1e-6)
    return runner


def rand(*shape, dtype, seed=0):
    return nx.tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", [
    lambda a, b, c: ((a + b) * c - a).relu(),
    lambda a, b, c: -(a * 0.1) / (c + 3),
    lambda a, b, c: ((a - b) * (a - b)) * 0.5 + c,
    lambda a, b, c: (a * b, (a * b) + c),  # an intermediate that is also a result stays one
], ids=["chain", "scalars", "shared", "two-results"])
def test_elementwise_chains_are_bit_exact(fn, dtype):
    a, b, c = (rand(3, 5, 7, dtype=dtype, seed=s) for s in range(3))
    runner = same(capture(fn, a, b, c), buffers(a, b, c))
    assert runner.groups >= 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", [((4, 6), (6,)), ((4, 6), (4, 1)), ((2, 4, 6), (1, 4, 1)), ((5, 6), ())],
                         ids=["row", "column", "middle", "scalar-tensor"])
def test_broadcasts(shapes, dtype):
    a, b = rand(*shapes[0], dtype=dtype), rand(*shapes[1], dtype=dtype, seed=1)
    same(capture(lambda a, b: (a * b + a) - b, a, b), buffers(a, b))


@pytest.mark.parametrize("dtype", DTYPES)
def test_permuted_operands_are_read_in_place(dtype):
    a, b = rand(3, 4, 5, dtype=dtype), rand(3, 5, 4, dtype=dtype, seed=1)
    # (NumPy gives an op on a permuted view alone a permuted result: that op is left to its kernel, as the
    # fused loop writes contiguous results only)
    fn = lambda a, b: ((a * 2 + b.permute(0, 2, 1)) - a, b.permute(0, 2, 1) * 3 + 1)  # noqa: E731
    runner = same(capture(fn, a, b), buffers(a, b))
    assert runner.groups == 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_reductions_matmul_and_linear(dtype):
    x, w, bias = rand(4, 3, 5, dtype=dtype), rand(4, 2, 5, dtype=dtype, seed=1), rand(4, 2, dtype=dtype, seed=2)

    def fn(x, w, bias):
        h = nx.nn.functional.linear(x, w, bias).relu() * 2 - 1
        return (h @ h.permute(0, 2, 1)).sum(1), (h * h).mean()

    same(capture(fn, x, w, bias), buffers(x, w, bias))


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_nan_and_inf_propagate_as_in_eager():
    a = nx.tensor(np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1.0, -1.0], np.float32))
    b = nx.tensor(np.array([1.0, -np.inf, np.inf, 0.0, -0.0, np.nan, 2.0], np.float32))
    fn = lambda a, b: ((a + b).relu() * a, (a * b) / b - a)  # noqa: E731
    same(capture(fn, a, b), buffers(a, b))
    eager = fn(a, b)
    runner = CpuBackend().compile_program(capture(fn, a, b))
    runner(buffers(a, b))
    for e, g in zip(eager, runner(buffers(a, b))):
        np.testing.assert_array_equal(g, e.numpy())


@pytest.mark.parametrize("shape", [(0,), (3, 0, 2)])
def test_zero_size_tensors(shape):
    a, b = rand(*shape, dtype="float32"), rand(*shape, dtype="float32", seed=1)
    same(capture(lambda a, b: (a + b) * a - 1, a, b), buffers(a, b))


def test_other_signatures_replay_the_program_as_it_is():
    a, b = rand(4, 6, dtype="float32"), rand(4, 6, dtype="float32", seed=1)
    program = capture(lambda a, b: (a + b) * b, a, b)
    runner = CpuBackend().compile_program(program)
    runner(buffers(a, b))
    t = np.asfortranarray(a._data)  # same shape, other strides: no fused loop reads it
    np.testing.assert_array_equal(runner([t, b._data])[0], replay(program)([t, b._data])[0])


def test_the_disk_cache_is_hit_by_a_second_compilation(monkeypatch):
    a, b = rand(5, 3, dtype="float64"), rand(5, 3, dtype="float64", seed=1)
    program = capture(lambda a, b: (a - b) * (a + b), a, b)
    before = dict(jit.stats)
    same(program, buffers(a, b))
    assert jit.stats["compiled"] == before["compiled"] + 1
    monkeypatch.setattr(jit, "_loaded", {})  # as a new process would: only the disk cache holds it
    same(program, buffers(a, b))
    assert jit.stats["compiled"] == before["compiled"] + 1 and jit.stats["loaded"] == before["loaded"] + 1


def test_an_unwritable_cache_falls_back_to_a_temporary_build(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("NEURENIX_CACHE_DIR", str(blocked))  # cache dir would be file/cpu-c: cannot be made
    a, b = rand(5, 3, dtype="float32"), rand(5, 3, dtype="float32", seed=1)
    runner = same(capture(lambda a, b: (a - b) * 3 + a, a, b), buffers(a, b))
    assert runner.fast is not None


def test_a_compiler_failure_replays_kernel_by_kernel(monkeypatch):
    monkeypatch.setattr(jit, "CFLAGS", ["-this-flag-does-not-exist"])
    a, b = rand(5, 3, dtype="float32"), rand(5, 3, dtype="float32", seed=1)
    program = capture(lambda a, b: (a - b) * 3 + a, a, b)
    with pytest.warns(RuntimeWarning, match="kernel by kernel"):
        runner = same(program, buffers(a, b))
    assert runner.fast is None


@pytest.mark.parametrize("setting", ["0", None])
def test_fusion_is_off_unless_asked_for(setting, monkeypatch):
    a = rand(3, dtype="float32")
    if setting is None:
        monkeypatch.delenv("NEURENIX_CPU_FUSE")
    else:
        monkeypatch.setenv("NEURENIX_CPU_FUSE", setting)
    assert CpuBackend().compile_program(capture(lambda a: a * 2 + 1, a)) is None


def _maml_params(dtype, fuse: str, monkeypatch):
    """A small second-order MAML (functional, in core only: this env has no neurenix.meta), four compiled
    meta-steps on sine-like tasks; its parameters afterwards, and the runners that replayed it."""
    monkeypatch.setenv("NEURENIX_CPU_FUSE", fuse)
    nx.manual_seed(0)
    model = nx.nn.Sequential(nx.nn.Linear(1, 8), nx.nn.ReLU(), nx.nn.Linear(8, 8), nx.nn.ReLU(), nx.nn.Linear(8, 1))
    model = model.double() if dtype == "float64" else model
    params = list(model.parameters())
    optimizer = nx.optim.SGD(params, lr=0.001)

    def forward(ws, x):
        h = (x @ ws[0].T + ws[1]).relu()
        h = (h @ ws[2].T + ws[3]).relu()
        return h @ ws[4].T + ws[5]

    def meta_step(sx, sy, qx, qy):
        optimizer.zero_grad()
        inner = ((forward(params, sx) - sy) ** 2).mean()
        grads = nx.autograd.grad(inner, params, create_graph=True)
        fast = [p - 0.01 * g for p, g in zip(params, grads)]
        outer = ((forward(fast, qx) - qy) ** 2).mean()
        outer.backward()
        optimizer.step()
        return outer.detach()

    step = nx.compile(meta_step)
    rng = np.random.default_rng(1)
    for _ in range(4):
        x = rng.uniform(-5, 5, (12, 1))
        sx, sy, qx, qy = (nx.tensor(a, dtype=dtype) for a in (x[:6], np.sin(x[:6]), x[6:], np.sin(x[6:])))
        step(sx, sy, qx, qy)
    assert step.stats["replays"] >= 2
    runners = [e.runner for e in step._cache.values() if hasattr(e, "runner")]
    return [p.numpy().copy() for p in model.parameters()], runners


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_maml_step_is_bit_exact(dtype, monkeypatch):
    want, plain = _maml_params(dtype, "0", monkeypatch)
    got, fused = _maml_params(dtype, "1", monkeypatch)
    assert not any(isinstance(r, compiler.Runner) for r in plain)
    assert any(isinstance(r, compiler.Runner) and r.groups > 0 for r in fused)
    for w, g in zip(want, got):
        assert g.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(g, w)


def test_fusion_survives_with_env_cache_default(monkeypatch):
    monkeypatch.delenv("NEURENIX_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "/nonexistent/neurenix-test")
    assert str(jit.cache_dir()).startswith("/nonexistent/neurenix-test")
    assert os.path.basename(str(jit.cache_dir())) == "cpu-c"
