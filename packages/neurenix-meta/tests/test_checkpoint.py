"""Checkpoints: the safetensors format (against the reference package both ways), modules, optimizers and
meta-learners, bad files, atomic writes, and meta_learn resuming where it stopped."""

import os
import subprocess
import sys

import numpy as np
import pytest
import safetensors.numpy

import neurenix as nx
from meta_helpers import class_tasks, mlp, sine_tasks
from neurenix import nn
from neurenix.meta import MAML, CheckpointError, PrototypicalNetworks, Reptile, load_checkpoint, save_checkpoint
from neurenix.meta.checkpoint import read_safetensors, write_safetensors
from neurenix.optim import SGD, Adam

DTYPES = [np.float32, np.float64, np.float16, np.int64, np.int32, np.int8, np.uint8, np.bool_]


def arrays(dtype):
    rng = np.random.default_rng(0)
    return {"a": (rng.standard_normal((3, 4)) * 10).astype(dtype), "empty": np.zeros((0, 2), dtype),
            "scalar": np.asarray(rng.standard_normal() > 0).astype(dtype), "b.c": np.arange(5).astype(dtype)}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_format_round_trips_and_matches_the_reference_implementation(tmp_path, dtype):
    ours, theirs = tmp_path / "ours.safetensors", tmp_path / "theirs.safetensors"
    data = arrays(dtype)
    write_safetensors(ours, data, {"k": "v"})
    safetensors.numpy.save_file(data, str(theirs), metadata={"k": "v"})
    for path in (ours, theirs):
        back, meta = read_safetensors(path)
        assert meta == {"k": "v"} and set(back) == set(data)
        for name, a in data.items():
            assert back[name].dtype == a.dtype and back[name].shape == a.shape
            np.testing.assert_array_equal(back[name], a)
    reference = safetensors.numpy.load_file(str(ours))
    for name, a in data.items():
        np.testing.assert_array_equal(reference[name], a)


def trained(opt_cls, steps=3, **kw):
    model = mlp(sizes=(2, 5, 1))
    opt = opt_cls(model.parameters(), lr=0.05, **kw)
    x, y = nx.randn(8, 2, dtype=nx.float64), nx.randn(8, 1, dtype=nx.float64)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    return model, opt, (x, y)


@pytest.mark.parametrize("opt_cls, kw", [(Adam, {}), (SGD, {"momentum": 0.9})], ids=["Adam", "SGD-momentum"])
def test_module_and_optimizer_resume(tmp_path, opt_cls, kw):
    model, opt, (x, y) = trained(opt_cls, **kw)
    save_checkpoint(tmp_path / "c.safetensors", model, opt, metadata={"note": [1, "two"]})
    fresh, _, _ = trained(opt_cls, steps=0, **kw)
    fresh_opt = opt_cls(fresh.parameters(), lr=1.0, **kw)
    assert load_checkpoint(tmp_path / "c.safetensors", fresh, fresh_opt) == {"note": [1, "two"]}
    assert fresh_opt.param_groups[0]["lr"] == 0.05
    for m, o in ((model, opt), (fresh, fresh_opt)):  # one more step each: the optimizer state must agree
        o.zero_grad()
        nn.functional.mse_loss(m(x), y).backward()
        o.step()
    for (name, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items()):
        # not bit-exact: the C backend's vectorised Adam rounds by 1 ulp differently depending on where a
        # buffer sits in memory; a lost optimizer state would differ by far more
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-15, err_msg=name)


def test_meta_learner_saves_its_own_optimizer_and_buffers(tmp_path):
    net = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 4)).double()
    learner = PrototypicalNetworks(net)
    learner.meta_learn(class_tasks(4), epochs=2)
    save_checkpoint(tmp_path / "p.safetensors", learner)
    names = set(read_safetensors(tmp_path / "p.safetensors")[0])
    assert "model.1.running_mean" in names and any(n.startswith("optimizer/") for n in names)
    other = PrototypicalNetworks(nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 4)).double())
    load_checkpoint(tmp_path / "p.safetensors", other)
    for k, v in learner.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), other.state_dict()[k].numpy(), err_msg=k)
    a, b = learner.default_optimizer().state_dict(), other.default_optimizer().state_dict()
    assert a["state"][0]["step"] == b["state"][0]["step"] == 2
    np.testing.assert_array_equal(a["state"][0]["exp_avg"].numpy(), b["state"][0]["exp_avg"].numpy())


def test_plain_safetensors_state_dict_loads(tmp_path):
    model = mlp(sizes=(2, 3, 1))
    safetensors.numpy.save_file({k: v.numpy() for k, v in model.state_dict().items()}, str(tmp_path / "m.st"))
    other = mlp(seed=5, sizes=(2, 3, 1))
    assert load_checkpoint(tmp_path / "m.st", other) == {}
    np.testing.assert_array_equal(other.state_dict()["0.weight"].numpy(), model.state_dict()["0.weight"].numpy())


def test_incompatible_model_lists_names_and_shapes_and_changes_nothing(tmp_path):
    save_checkpoint(tmp_path / "c.safetensors", mlp(sizes=(1, 6, 6, 1)))
    other = mlp(seed=3, sizes=(1, 7, 1))
    before = {k: v.numpy().copy() for k, v in other.state_dict().items()}
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(tmp_path / "c.safetensors", other)
    msg = str(e.value)
    assert "\n" not in msg and "c.safetensors does not fit this Sequential" in msg
    assert "unexpected 4.weight (1, 6)" in msg and "0.weight is (6, 1) in the file but (7, 1) in the model" in msg
    assert "2.weight is (6, 6) in the file but (1, 7) in the model" in msg
    for k, v in other.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])


def test_optimizer_of_another_kind_is_refused(tmp_path):
    model, opt, _ = trained(Adam)
    save_checkpoint(tmp_path / "c.safetensors", model, opt)
    with pytest.raises(CheckpointError, match="holds Adam state, not SGD"):
        load_checkpoint(tmp_path / "c.safetensors", model, SGD(model.parameters(), lr=0.1))


def corruptions(good: bytes):
    n = int.from_bytes(good[:8], "little")
    yield "empty", b"", "fewer than the 8"
    yield "header cut", good[:8 + n // 2], "truncated"
    yield "data cut", good[:-3], "truncated"
    yield "huge header", (10**12).to_bytes(8, "little") + good[8:], "truncated"
    yield "not JSON", good[:8] + b"\xff" * n + good[8 + n:], "not valid JSON"
    yield "JSON list", len(b"[1]   ").to_bytes(8, "little") + b"[1]   ", "not an object"
    bad = good[8:8 + n].replace(b'"F64"', b'"X64"', 1)
    yield "unknown dtype", good[:8] + bad + good[8 + n:], "malformed entry"
    bad = good[8:8 + n].replace(b'"data_offsets":[0,', b'"data_offsets":[8,', 1)
    yield "bad offsets", good[:8] + bad + good[8 + n:], "do not hold shape"


def test_corrupt_or_truncated_files_give_one_clear_error(tmp_path):
    save_checkpoint(tmp_path / "good.safetensors", mlp(sizes=(1, 3, 1)))
    good = (tmp_path / "good.safetensors").read_bytes()
    for name, data, why in corruptions(good):
        path = tmp_path / "bad.safetensors"
        path.write_bytes(data)
        with pytest.raises(CheckpointError, match=why) as e:
            load_checkpoint(path, mlp(sizes=(1, 3, 1)))
        assert "\n" not in str(e.value) and "bad.safetensors" in str(e.value), name


def test_a_failing_save_leaves_the_previous_checkpoint_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    model = mlp(sizes=(1, 3, 1))
    save_checkpoint(path, model)
    before = path.read_bytes()
    with nx.no_grad():
        next(model.parameters()).add_(1.0)

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["c.safetensors"]


CRASH = """
import os, sys
import neurenix as nx
from neurenix.meta import save_checkpoint
from neurenix.meta import checkpoint
model = nx.nn.Sequential(nx.nn.Linear(1, 300), nx.nn.Linear(300, 1))
real = checkpoint.atomic_write
def dying(path, chunks):
    def pieces():
        for i, chunk in enumerate(chunks):
            if i == 3:
                os._exit(3)  # killed mid-write: no clean-up runs
            yield chunk
    real(path, pieces())
checkpoint.atomic_write = dying
checkpoint.write_safetensors(sys.argv[1], {k: v.numpy() for k, v in model.state_dict().items()})
"""


def test_a_process_killed_mid_save_leaves_the_previous_checkpoint_intact(tmp_path):
    path = tmp_path / "c.safetensors"
    model = mlp(sizes=(1, 300, 1))
    save_checkpoint(path, model)
    before = path.read_bytes()
    run = subprocess.run([sys.executable, "-c", CRASH, str(path)], capture_output=True, text=True)
    assert run.returncode == 3, run.stderr
    assert path.read_bytes() == before
    load_checkpoint(path, mlp(sizes=(1, 300, 1)))


@pytest.mark.parametrize("make, tasks", [
    (lambda: MAML(mlp(), inner_lr=0.1, inner_steps=1), lambda: sine_tasks(5)),
    (lambda: Reptile(mlp(), inner_lr=0.05, meta_lr=0.5, inner_steps=2), lambda: sine_tasks(5)),
    (lambda: PrototypicalNetworks(mlp(sizes=(5, 6, 4))), lambda: class_tasks(5)),
], ids=["MAML", "Reptile", "ProtoNets"])
@pytest.mark.parametrize("fresh_tasks", [False, True], ids=["fixed-tasks", "tasks-per-epoch"])
def test_meta_learn_resumes_where_it_stopped(tmp_path, make, tasks, fresh_tasks):
    fixed = tasks()

    def per_epoch(epoch):  # drawn from neurenix's generator: the resumed random state matters
        shift = float(nx.randn(1).item())
        return [(sx + shift, sy, qx + shift, qy) for sx, sy, qx, qy in fixed[:3]]

    source = per_epoch if fresh_tasks else fixed
    nx.manual_seed(7)
    whole = make()
    expected = whole.meta_learn(source, epochs=4, tasks_per_batch=2)
    nx.manual_seed(7)
    first = make()
    first.meta_learn(source, epochs=2, tasks_per_batch=2, checkpoint=tmp_path / "run.safetensors")
    nx.manual_seed(99)  # the resumed run must not depend on the state it starts in
    resumed = make()
    history = resumed.meta_learn(source, epochs=4, tasks_per_batch=2, resume=tmp_path / "run.safetensors")
    assert history.keys() == expected.keys()
    for k in expected:  # equal up to rounding (see test_module_and_optimizer_resume)
        np.testing.assert_allclose(history[k], expected[k], rtol=1e-10, err_msg=k)
    for k, v in whole.state_dict().items():
        np.testing.assert_allclose(v.numpy(), resumed.state_dict()[k].numpy(), rtol=1e-10, atol=1e-13, err_msg=k)


def test_checkpoint_every_and_at_the_end(tmp_path, monkeypatch):
    from neurenix.meta import resume

    saved = []
    monkeypatch.setattr(resume, "save_checkpoint", lambda path, m, o, metadata: saved.append(metadata["epoch"]))
    MAML(mlp(), inner_steps=1).meta_learn(sine_tasks(2), epochs=7, checkpoint="x", checkpoint_every=3)
    assert saved == [3, 6, 7]
    with pytest.raises(ValueError, match="checkpoint_every"):
        MAML(mlp()).meta_learn(sine_tasks(2), checkpoint="x", checkpoint_every=0)
