"""What the conformance suite does not cover: the listing, refusals (dtypes, sizes, limits), compile
errors, lazy submission (host waits), pipeline caching, grid-strided loops, and a second-order,
task-batched MAML step matching the cpu run."""

import os

import numpy as np
import pytest

import neurenix as nx
from neurenix.errors import DTypeError


def _webgpu_status():
    return next((s for s in nx.list_backends() if s.device_type == "webgpu"), None)


@pytest.fixture(scope="module")
def rt():
    status = _webgpu_status()
    required = [r.strip() for r in os.environ.get("NEURENIX_REQUIRE_BACKENDS", "").split(",")]
    if (status is None or not status.available) and "webgpu" not in required:
        pytest.skip(f"webgpu cannot run here: {status.reason if status else 'backend not installed'}")
    nx.Device("webgpu").check()
    from neurenix_backend_webgpu import kernels
    return kernels.RT


def test_listing_names_the_adapter(rt):
    status = _webgpu_status()
    assert status.available and nx.get_device_count(nx.DeviceType.WEBGPU) == 1
    info = rt.adapter.info
    (dev,) = status.devices
    assert dev.startswith("webgpu:0 ") and info["backend_type"] in dev and str(info["device"]) in dev
    assert any(kind in dev for kind in ("GPU", "CPU")), dev


def test_no_adapter_gives_the_reason(monkeypatch):
    wgpu = pytest.importorskip("wgpu")
    from neurenix_backend_webgpu import runtime
    monkeypatch.setattr(wgpu.gpu, "request_adapter_sync", lambda **kw: None)
    adapter, reason = runtime.probe()
    assert adapter is None and "no WebGPU adapter" in reason


def test_mesas_xdg_complaint_stays_off_the_terminal():
    """Probing with XDG_RUNTIME_DIR unset (servers, CI) writes nothing about it to stderr; other lines written
    to fd 2 meanwhile still get through."""
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    code = ("import os; from neurenix_backend_webgpu import runtime; runtime.probe()\n"
            "with runtime._without_wsi_noise(): os.write(2, b'kept\\nerror: XDG_RUNTIME_DIR is invalid\\n')")
    err = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stderr
    assert "XDG_RUNTIME_DIR" not in err and err.strip() == "kept"


def test_float64_is_a_clear_error(rt):
    with pytest.raises(DTypeError, match="webgpu.*float64"):
        nx.tensor(np.ones(3), device="webgpu")  # a float64 array keeps its dtype
    with pytest.raises(DTypeError, match="float64"):
        nx.ones(3, device="webgpu").double()


def test_int64_outside_int32_is_refused(rt):
    with pytest.raises(OverflowError, match="2147483648.*32-bit"):
        nx.tensor([2 ** 31], device="webgpu")
    assert nx.tensor([-(2 ** 31), 2 ** 31 - 1], device="webgpu").tolist() == [-(2 ** 31), 2 ** 31 - 1]


def test_mixing_devices_names_both(rt):
    with pytest.raises(nx.errors.DeviceError, match=r"webgpu:0.*cpu|cpu.*webgpu:0"):
        nx.ones(2, device="webgpu") * nx.ones(2)


def test_compile_error_names_the_kernel_and_shows_wgsl(rt):
    from neurenix_backend_webgpu import KernelCompileError
    with pytest.raises(KernelCompileError, match=r"(?s)'broken/test'.*no_such_thing.*--- WGSL ---"):
        rt.pipeline(("broken", "test"), 2, lambda: "@compute @workgroup_size(1) fn main() { no_such_thing(); }")


def test_tensor_over_the_binding_limit_is_refused(rt, monkeypatch):
    monkeypatch.setattr(rt, "max_binding", 64)
    with pytest.raises(MemoryError, match=r"max-storage-buffer-binding-size \(64 bytes\)"):
        nx.zeros(17, device="webgpu")
    with pytest.raises(MemoryError, match="max-storage-buffer-binding-size"):
        nx.tensor(np.ones(17, np.float32), device="webgpu")


def test_work_is_queued_until_a_value_is_read(rt):
    import neurenix_backend_webgpu as wg
    x = nx.tensor(np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8), device="webgpu")
    wg.reset_stats()
    y = x
    for _ in range(20):
        y = (y @ x).tanh() * 0.5 + x.sum(0)
    assert wg.stats().get("host_waits", 0) == 0 and wg.stats()["dispatches"] >= 80
    got = y.numpy()
    assert wg.stats()["host_waits"] == 1
    ref = x.numpy()
    want = ref
    for _ in range(20):
        want = np.tanh(want @ ref) * 0.5 + ref.sum(0)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_pipelines_are_compiled_once_per_specialisation(rt):
    import neurenix_backend_webgpu as wg
    a = nx.ones((3, 5), device="webgpu")
    (a + 1).sin().sum(1).numpy()
    wg.reset_stats()
    b = nx.ones((7, 2), device="webgpu")
    (b + 2).sin().sum(1).numpy()
    assert wg.stats().get("pipelines_compiled", 0) == 0


@pytest.mark.parametrize("op", ["map", "reduce", "argmin_long_rows", "max_long_rows", "matmul", "matmul_tile16",
                                "unfold", "unfold_untiled", "fold", "getitem"])
def test_more_work_than_the_workgroup_count_limit(rt, monkeypatch, op):
    """With the per-dimension workgroup count forced down to 2, every kernel loops over the rest."""
    monkeypatch.setattr(rt, "max_groups", 2)
    monkeypatch.setattr(rt, "tile", 16 if op == "matmul_tile16" else rt.tile)  # the GPU tile size, here too
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5, 3, 9, 40)).astype(np.float32)
    x = nx.tensor(a, device="webgpu")
    F = nx.nn.functional
    got, want = {
        "map": lambda: ((x * 2).exp(), np.exp(a * 2)),
        "reduce": lambda: (x.sum((1, 3)), a.sum((1, 3))),
        "argmin_long_rows": lambda: (x.reshape(5, -1).argmin(1), a.reshape(5, -1).argmin(1)),
        "max_long_rows": lambda: (x.reshape(5, -1).amax(1), a.reshape(5, -1).max(1)),
        "matmul": lambda: (x @ x.transpose(2, 3), a @ a.transpose(0, 1, 3, 2)),
        "matmul_tile16": lambda: (x @ x.transpose(2, 3), a @ a.transpose(0, 1, 3, 2)),
        "unfold": lambda: (F.unfold(x, 3, padding=1), F.unfold(nx.tensor(a), 3, padding=1).numpy()),
        "unfold_untiled": lambda: (F.unfold(x, 2, stride=8), F.unfold(nx.tensor(a), 2, stride=8).numpy()),
        "fold": lambda: (F.fold(x[..., :32].reshape(5, 27, 32), (6, 10), 3),
                         F.fold(nx.tensor(a[..., :32].reshape(5, 27, 32)), (6, 10), 3).numpy()),
        "getitem": lambda: (x[nx.tensor([4, 0, 4], device="webgpu"), :, 1:8:3], a[[4, 0, 4], :, 1:8:3]),
    }[op]()
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-4)


def _maml_sine(device, tasks=5, points=10, inner_lr=0.01):
    """One second-order MAML meta-gradient on sine tasks, task-batched: parameters expanded over a
    leading task axis, one inner step with create_graph=True, query loss through functional_call."""
    nx.manual_seed(0)
    model = nx.nn.Sequential(nx.nn.Linear(1, 40), nx.nn.ReLU(), nx.nn.Linear(40, 40), nx.nn.ReLU(),
                             nx.nn.Linear(40, 1)).to(device)
    rng = np.random.default_rng(0)
    amp, phase = rng.uniform(0.1, 5.0, (tasks, 1, 1)), rng.uniform(0, np.pi, (tasks, 1, 1))
    xs, xq = (rng.uniform(-5, 5, (tasks, points, 1)) for _ in range(2))
    data = [nx.tensor(v.astype(np.float32), device=device) for v in (xs, amp * np.sin(xs - phase),
                                                                     xq, amp * np.sin(xq - phase))]
    names, theta = zip(*model.named_parameters())
    batched = [p.expand(tasks, *p.shape) for p in theta]
    inner = ((nx.func.functional_call(model, dict(zip(names, batched)), data[0]) - data[1]) ** 2).mean((1, 2)).sum()
    grads = nx.autograd.grad(inner, batched, create_graph=True)
    fast = {n: b - inner_lr * g for n, b, g in zip(names, batched, grads)}
    loss = ((nx.func.functional_call(model, fast, data[2]) - data[3]) ** 2).mean()
    meta = nx.autograd.grad(loss, theta)
    return loss.item(), [g.numpy() for g in meta]


def test_second_order_maml_matches_cpu(rt):
    import neurenix_backend_webgpu as wg
    wg.reset_stats()
    loss, grads = _maml_sine("webgpu")
    assert wg.stats()["host_waits"] == 1 + len(grads)  # the loss, then each gradient read for the check
    want_loss, want_grads = _maml_sine("cpu")
    np.testing.assert_allclose(loss, want_loss, rtol=1e-4)
    for g, w in zip(grads, want_grads):
        np.testing.assert_allclose(g, w, rtol=1e-3, atol=1e-4)


I32_MAX = 2 ** 31 - 1

# int64 lives in 32 bits: every result NumPy's int64 holds but int32 does not raises OverflowError (at the
# next read), never wraps
OVERFLOWS = {
    "sum": lambda t: t([I32_MAX, 1]).sum(),
    "sum_negative": lambda t: t([-I32_MAX, -2]).sum(),
    "sum_long_rows": lambda t: t(np.full((2, 600), 2 ** 22)).sum(1),  # 600 * 2^22 > 2^31: the tree path
    "add": lambda t: t([I32_MAX - 1, 0]) + 2,
    "sub": lambda t: t([-I32_MAX, 0]) - t([2, 0]),
    "mul": lambda t: t([2 ** 16, 3]) * t([2 ** 15, 1]),
    "neg": lambda t: -(t([-I32_MAX]) - 1),
    "abs": lambda t: (t([-I32_MAX]) - 1).abs(),
    "matmul": lambda t: t([[2 ** 20, 2 ** 20]]) @ t([[2 ** 11], [2 ** 11]]),
    "cast": lambda t: nx.tensor([3.0e9], device="webgpu").long(),
    "cast_nan": lambda t: nx.tensor([float("nan")], device="webgpu").long(),
    "index_put_accumulate": lambda t: t([0, 0]).index_put((t([1, 1]),), t([2 ** 30, 2 ** 30]), accumulate=True),
}


def _ints(values):
    return nx.tensor(np.asarray(values, np.int64), device="webgpu")


@pytest.mark.parametrize("op", OVERFLOWS)
def test_int64_results_beyond_32_bits_raise_at_the_next_read(rt, op):
    OVERFLOWS[op](_ints)
    unrelated = nx.ones(2, device="webgpu") * 3  # the flag is the device's: any read reports it
    with pytest.raises(OverflowError, match=r"32-bit integer range \[-2147483648, 2147483647\]"):
        unrelated.numpy()
    assert (_ints([5, 6]) * 2).tolist() == [10, 12]  # reported once: the device computes on


@pytest.mark.parametrize("values", [[I32_MAX, 1, -1], [-I32_MAX, -1, -1, 2], [I32_MAX] * 3 + [-I32_MAX] * 3])
def test_int64_sums_are_exact_when_the_result_fits(rt, values):
    """Partial sums beyond 32 bits are fine (accumulated in 64 bits), as with NumPy's int64."""
    long_rows = np.zeros((2, 600), np.int64)  # rows long enough for the workgroup tree
    long_rows[:, 100:100 + len(values)] = values
    assert _ints(values).sum().item() == sum(values)
    np.testing.assert_array_equal(_ints(long_rows).sum(1).numpy(), long_rows.sum(1))
    a, b = np.array([[2 ** 15, 2 ** 15, -(2 ** 15)]]), np.full((3, 1), 2 ** 15)  # 2^30 + 2^30 - 2^30
    np.testing.assert_array_equal((_ints(a) @ _ints(b)).numpy(), a @ b)


def test_overflow_is_reported_by_synchronize(rt):
    _ints([I32_MAX]) + 1
    with pytest.raises(OverflowError):
        nx.synchronize("webgpu")
    nx.synchronize("webgpu")


def test_two_threads_summing_get_every_sum_right(rt):
    """The issue's reproduction: two threads each upload, compute and read sums; with a shared pending list
    and no lock, dispatches were lost or submitted after the read that needed them (0-4 wrong of 200)."""
    import threading

    rng = np.random.default_rng(0)
    data = [rng.standard_normal(1000).astype(np.float32) for _ in range(200)]
    want = [nx.tensor(d, device="webgpu").sum().item() for d in data]
    got = [None] * len(data)

    def work(first):
        for i in range(first, len(data), 2):
            got[i] = ((nx.tensor(data[i], device="webgpu") * 1.0) + 0.0).sum().item()
    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == want


def test_a_pipeline_missed_by_two_threads_at_once_compiles_once(rt):
    import threading

    import neurenix_backend_webgpu as wg
    from neurenix_backend_webgpu import kernels

    x = nx.ones((3, 5), device="webgpu")

    def work():
        (x * 2).tanh().cos().numpy()

    def compiled(threads: int) -> int:
        """Pipelines compiled by ``threads`` threads running ``work`` at once, from an empty cache."""
        kernels.RT.pipelines.clear()  # (earlier tests in this process may have compiled them)
        wg.reset_stats()
        start = threading.Barrier(threads)
        runs = [threading.Thread(target=lambda: (start.wait(), work())) for _ in range(threads)]
        for t in runs:
            t.start()
        for t in runs:
            t.join()
        return wg.stats().get("pipelines_compiled", 0)

    alone = compiled(1)
    assert alone >= 3  # mul, tanh, cos at least
    assert compiled(2) == alone  # each once however the threads interleave
