"""Checkpoints: the safetensors format (against the reference package both ways), modules, optimizers and
meta-learners, bad files, atomic writes, and meta_learn resuming where it stopped."""

import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest
import safetensors
import safetensors.numpy

import neurenix as nx
from meta_helpers import class_tasks, mlp, sine_tasks
from neurenix import nn
from neurenix.meta import MAML, CheckpointError, PrototypicalNetworks, load_checkpoint, save_checkpoint
from neurenix.meta.checkpoint import check_writable, read_safetensors, write_safetensors
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
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


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
    assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]  # the killed save's partial file
    save_checkpoint(path, model)  # the next save of the file removes it
    assert os.listdir(tmp_path) == ["c.safetensors"]


def test_checkpoint_every_and_at_the_end(tmp_path, monkeypatch):
    from neurenix.meta import resume

    saved = []
    monkeypatch.setattr(resume, "save_checkpoint", lambda path, m, o, metadata: saved.append(metadata["epoch"]))
    MAML(mlp(), inner_steps=1).meta_learn(sine_tasks(2), epochs=7, checkpoint="x", checkpoint_every=3)
    assert saved == [3, 6, 7]
    with pytest.raises(ValueError, match="checkpoint_every"):
        MAML(mlp()).meta_learn(sine_tasks(2), checkpoint="x", checkpoint_every=0)


# -- what the reference refuses, and what it accepts ---------------------------------------------------------
def raw_file(header, data=b"", text=None):
    """A safetensors file from a header (dict, or ``text`` as written) and data."""
    text = json.dumps(header).encode() if text is None else text
    return len(text).to_bytes(8, "little") + text + data


F32 = np.arange(4, dtype="<f4").tobytes()


def entry(begin, end, shape=(2,), dtype="F32"):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": [begin, end]}


REFUSED = {  # name: (file, what our error says)
    "overlapping offsets": (raw_file({"a": entry(0, 8), "b": entry(4, 12)}, F32), "overlaps the tensor before it"),
    "a gap between tensors": (raw_file({"a": entry(0, 4, (1,)), "b": entry(8, 16)}, F32), "leaves a gap of 4 bytes"),
    "two tensors on the same bytes": (raw_file({"a": entry(0, 8), "b": entry(0, 8)}, F32[:8]), "overlaps"),
    "data after the last tensor": (raw_file({"a": entry(0, 8)}, F32), "not fully covered"),
    "data and no tensors": (raw_file({}, b"xx"), "not fully covered"),
    "duplicate tensor keys": (raw_file(None, F32, b'{"a":' + json.dumps(entry(0, 8)).encode() + b',"a":'
                                       + json.dumps(entry(8, 16)).encode() + b"}"), "duplicate key 'a'"),
    "duplicate __metadata__": (raw_file(None, F32[:8], b'{"__metadata__":{"x":"1"},"__metadata__":{"x":"2"},"a":'
                                        + json.dumps(entry(0, 8)).encode() + b"}"), "duplicate key '__metadata__'"),
    "a header over 100 MB": ((200_000_000).to_bytes(8, "little") + b"{}", "more than the 100000000"),
    "junk after the header's JSON": (raw_file(None, F32[:8], b'{"a":' + json.dumps(entry(0, 8)).encode() + b"}x"),
                                     "not valid JSON"),
    "a negative dimension": (raw_file({"a": entry(0, 8, (-2,))}, F32[:8]), "malformed entry"),
    "a fractional dimension": (raw_file(None, F32[:8], b'{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}'),
                               "malformed entry"),
    "NaN in the header": (raw_file(None, F32[:8], b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":NaN}}'),
                          "NaN is not a JSON number"),
    "non-string metadata": (raw_file({"__metadata__": {"x": 1}, "a": entry(0, 8)}, F32[:8]), "map strings to strings"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_what_the_reference_refuses_we_refuse(tmp_path, name):
    data, why = REFUSED[name]
    with pytest.raises(safetensors.SafetensorError):
        safetensors.numpy.load(data)
    (tmp_path / "f.safetensors").write_bytes(data)
    with pytest.raises(CheckpointError, match=why):
        read_safetensors(tmp_path / "f.safetensors")


@pytest.mark.parametrize("data", [
    raw_file({"b": entry(8, 16), "a": entry(0, 8)}, F32),  # entries in any order
    raw_file(None, F32[:8], b' {"a":' + json.dumps(entry(0, 8)).encode() + b"}   "),  # spaces around the JSON
    raw_file({"a": entry(0, 8) | {"extra": 1}, "__metadata__": None}, F32[:8]),  # unknown fields, null metadata
    raw_file({"a": entry(0, 0, (0,)), "b": entry(0, 0, (0, 3))}),  # empty tensors share an offset
], ids=["unordered", "spaces", "extra-fields", "empty-tensors"])
def test_what_the_reference_accepts_we_read_alike(tmp_path, data):
    (tmp_path / "f.safetensors").write_bytes(data)
    ours, theirs = read_safetensors(tmp_path / "f.safetensors")[0], safetensors.numpy.load(data)
    assert ours.keys() == theirs.keys()
    for k in ours:
        np.testing.assert_array_equal(ours[k], theirs[k])


def test_loaded_arrays_have_numpys_own_dtype_objects(tmp_path):
    """An equal dtype of another byte order is another object; the C backend compares dtypes by identity, and
    resumed runs took NumPy's Adam instead of its own (different rounding: not bit-exact)."""
    write_safetensors(tmp_path / "f.safetensors", {d.__name__: np.zeros(3, d) for d in DTYPES})
    for name, a in read_safetensors(tmp_path / "f.safetensors")[0].items():
        assert a.dtype is np.dtype(getattr(np, name)), name


# -- the checksum ---------------------------------------------------------------------------------------
def damaged(good: bytes, where: str) -> bytes:
    n = int.from_bytes(good[:8], "little")
    data = bytearray(good)
    if where == "data":
        data[len(data) - 5] ^= 0x01  # one bit of the last parameter
    elif where == "exponent":
        data[8 + n + 3] ^= 0x7F  # the first weight becomes NaN or huge
    else:  # a digit of the optimizer's learning rate inside the metadata
        at = good.index(b'\\"lr\\": 0.05', 8) + len(b'\\"lr\\": 0.0')
        data[at] = ord("7")
    return bytes(data)


@pytest.mark.parametrize("where", ["data", "exponent", "metadata"])
def test_a_changed_byte_is_refused_by_the_checksum(tmp_path, where):
    model, opt, _ = trained(Adam)
    save_checkpoint(tmp_path / "c.safetensors", model, opt)
    (tmp_path / "c.safetensors").write_bytes(damaged((tmp_path / "c.safetensors").read_bytes(), where))
    fresh, fresh_opt = mlp(seed=9, sizes=(2, 5, 1)), None
    fresh_opt = Adam(fresh.parameters(), lr=0.05)
    before = [p.numpy().copy() for p in fresh.parameters()]
    with pytest.raises(CheckpointError, match="the checksum does not match the contents"):
        load_checkpoint(tmp_path / "c.safetensors", fresh, fresh_opt)
    assert all(np.array_equal(a, p.numpy()) for a, p in zip(before, fresh.parameters())) and not fresh_opt.state


def test_a_version_2_file_without_its_checksum_is_refused(tmp_path):
    save_checkpoint(tmp_path / "c.safetensors", mlp(sizes=(1, 3, 1)))
    tensors, meta = read_safetensors(tmp_path / "c.safetensors")
    safetensors.numpy.save_file(tensors, str(tmp_path / "c.safetensors"), metadata=meta)  # no neurenix.sha256
    with pytest.raises(CheckpointError, match="the checksum is missing"):
        load_checkpoint(tmp_path / "c.safetensors", mlp(sizes=(1, 3, 1)))


# -- files on disk: permissions, leftovers of killed saves, checks before training ----------------------------
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_get_the_permissions_the_umask_gives(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        save_checkpoint(tmp_path / "c.safetensors", mlp(sizes=(1, 3, 1)))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "c.safetensors").st_mode) == mode


def test_the_next_save_removes_temporaries_of_dead_processes_only(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        stale, busy = tmp_path / f".c.safetensors.{dead.stdout.strip()}-0a1b.tmp", \
            tmp_path / f".c.safetensors.{alive.pid}-0a1b.tmp"
        other = tmp_path / f".d.safetensors.{dead.stdout.strip()}-0a1b.tmp"  # another file's: not ours to remove
        for f in (stale, busy, other):
            f.write_bytes(b"partial")
        save_checkpoint(tmp_path / "c.safetensors", mlp(sizes=(1, 3, 1)))
        assert sorted(os.listdir(tmp_path)) == sorted([busy.name, other.name, "c.safetensors"])
    finally:
        alive.kill()
        alive.wait()


@pytest.mark.parametrize("where, error", [("missing/c.safetensors", FileNotFoundError), (".", IsADirectoryError)])
def test_check_writable_fails_before_any_work(tmp_path, where, error):
    with pytest.raises(error, match="cannot save a checkpoint as"):
        check_writable(tmp_path / where)
    with pytest.raises(error, match="cannot save a checkpoint as"):
        MAML(mlp(), inner_steps=1).meta_learn(sine_tasks(2), epochs=1, checkpoint=tmp_path / where)


# -- what must fit: optimizer state, dtypes, argument types ----------------------------------------------------
def altered(path, change):
    """Re-save ``path`` with ``change(tensors, doc)`` applied (checksum recomputed: a well-formed file that
    says something wrong)."""
    tensors, meta = read_safetensors(path)
    doc = json.loads(meta["neurenix"])
    change(tensors, doc)
    write_safetensors(path, tensors, {"neurenix": json.dumps(doc)})


def group(doc):
    return doc["optimizer"]["param_groups"][0]


OPTIMIZER_CHANGES = {
    "state of shape (1,)": (lambda t, d: t.update({"optimizer/0/exp_avg": np.zeros(1)}), r"'exp_avg' of parameter 0"),
    "state in float32": (lambda t, d: t.update({"optimizer/0/exp_avg": t["optimizer/0/exp_avg"].astype(np.float32)}),
                         r"'exp_avg' of parameter 0 is F32 \(5, 2\), the parameter is neurenix.float64"),
    "state key missing": (lambda t, d: t.pop("optimizer/1/exp_avg_sq"), r"of parameter 1 lacks \['exp_avg_sq'\]"),
    "step 0": (lambda t, d: d["optimizer"]["state"]["0"].update(step=0), r"has step 0; a step count is an int >= 1"),
    "step -3": (lambda t, d: d["optimizer"]["state"]["0"].update(step=-3), r"has step -3"),
    "lr NaN": (lambda t, d: group(d).update(lr=float("nan")), r"has lr=nan"),
    "lr a string": (lambda t, d: group(d).update(lr="x"), r"has lr='x'"),
    "betas of three": (lambda t, d: group(d).update(betas=[0.9, 0.9, 0.9]), r"has betas=\[0.9, 0.9, 0.9\]"),
    "an unknown hyper-parameter": (lambda t, d: group(d).update(nesterov=True), r"group 0 has hyper-parameters"),
    "parameter index 99": (lambda t, d: d["optimizer"]["state"].update({"99": {"step": 1}}), r"names parameter '99'"),
    "parameters out of order": (lambda t, d: group(d).update(params=[1, 0, 2, 3]), r"numbers its parameters out of"),
    "state not an object": (lambda t, d: d["optimizer"].update(state=[]), r"is malformed"),
    "a float64 weight for float32": (lambda t, d: t.update({"0.bias": t["0.bias"].astype(np.float32)}),
                                     r"0.bias is F32 in the file but neurenix.float64 in the model"),
}


@pytest.mark.parametrize("name", OPTIMIZER_CHANGES)
def test_state_that_does_not_fit_is_refused_before_anything_changes(tmp_path, name):
    change, why = OPTIMIZER_CHANGES[name]
    model, opt, _ = trained(Adam)
    save_checkpoint(tmp_path / "c.safetensors", model, opt)
    altered(tmp_path / "c.safetensors", change)
    fresh = mlp(seed=9, sizes=(2, 5, 1))
    fresh_opt = Adam(fresh.parameters(), lr=0.5)
    before = [p.numpy().copy() for p in fresh.parameters()]
    with pytest.raises(CheckpointError, match=why):
        load_checkpoint(tmp_path / "c.safetensors", fresh, fresh_opt)
    assert all(np.array_equal(a, p.numpy()) for a, p in zip(before, fresh.parameters()))
    assert not fresh_opt.state and fresh_opt.param_groups[0]["lr"] == 0.5


def test_momentum_without_its_buffer_is_refused(tmp_path):
    model, opt, _ = trained(SGD, momentum=0.9)
    save_checkpoint(tmp_path / "c.safetensors", model, opt)
    altered(tmp_path / "c.safetensors", lambda t, d: t.pop("optimizer/2/momentum_buffer"))
    with pytest.raises(CheckpointError, match=r"of parameter 2 lacks \['momentum_buffer'\]"):
        load_checkpoint(tmp_path / "c.safetensors", model, SGD(model.parameters(), lr=0.1, momentum=0.9))


@pytest.mark.parametrize("call, match", [
    (lambda p: save_checkpoint(p, "model"), "module must be a neurenix.nn.Module, got str"),
    (lambda p: save_checkpoint(p, mlp(), "adam"), "optimizer must be a neurenix.optim.Optimizer or None, got str"),
    (lambda p: load_checkpoint(p, None), "module must be a neurenix.nn.Module, got NoneType"),
    (lambda p: load_checkpoint(p, mlp(), "adam"), "optimizer must be a neurenix.optim.Optimizer or None"),
    (lambda p: save_checkpoint(p, mlp(), metadata={"a": {1}}), "metadata must be JSON-serialisable"),
    (lambda p: save_checkpoint(p, mlp(), metadata={"a": float("nan")}), "with finite numbers"),
], ids=["save-module", "save-optimizer", "load-module", "load-optimizer", "metadata-set", "metadata-nan"])
def test_arguments_of_the_wrong_kind_are_named(tmp_path, call, match):
    save_checkpoint(tmp_path / "c.safetensors", mlp())
    with pytest.raises(TypeError, match=match):
        call(tmp_path / "c.safetensors")
