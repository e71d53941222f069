"""meta_learn's checkpoints: resuming is bit-exact (every learner, both CPU backends), and a checkpoint whose
progress metadata was altered, or that a run with other settings saved, is refused before anything changes."""

import json
import subprocess

import numpy as np
import pytest

import neurenix as nx
from meta_helpers import BACKENDS, class_tasks, mlp, python_on, sine_tasks
from neurenix.meta import MAML, CheckpointError, PrototypicalNetworks, Reptile, save_checkpoint
from neurenix.optim import SGD

EXACT = """
import numpy as np
from neurenix.nn import BatchNorm1d, Linear, ReLU, Sequential
from neurenix.meta import ANIL, MAML, R2D2, MetaSGD, PrototypicalNetworks, RelationNetworks, Reptile, iMAML
from neurenix.meta import generate_classification_tasks, generate_regression_tasks
from neurenix.optim import SGD

def net(i, o, bn=False):
    return Sequential(Linear(i, 16), *([BatchNorm1d(16)] if bn else []), ReLU(), Linear(16, o))

LEARNERS = {
    "MAML": lambda: MAML(net(1, 1), inner_lr=0.05, inner_steps=2),
    "first-order MAML": lambda: MAML(net(1, 1), inner_lr=0.05, inner_steps=2, first_order=True),
    "MAML++ rates": lambda: MAML(net(1, 1), inner_steps=2, per_step_lr=True, multi_step_weights=[0.3, 0.7]),
    "MetaSGD": lambda: MetaSGD(net(1, 1)),
    "ANIL": lambda: ANIL(net(1, 1), inner_steps=2),
    "iMAML": lambda: iMAML(net(1, 1), inner_steps=2, cg_steps=2),
    "MAML+Adam": lambda: MAML(net(1, 1), inner_steps=2, inner_optimizer="adam"),
    "Reptile": lambda: Reptile(net(1, 1), inner_steps=2),
    "Reptile+SGD": lambda: Reptile(net(1, 1), inner_steps=2),
    "ProtoNets": lambda: PrototypicalNetworks(net(6, 4, bn=True)),
    "Relation": lambda: RelationNetworks(net(6, 4), net(8, 1)),
    "R2D2": lambda: R2D2(net(6, 4, bn=True)),
}

def tasks(name):
    if name in ("ProtoNets", "Relation", "R2D2"):
        return lambda epoch: generate_classification_tasks(3, 3, 4, 6)
    return lambda epoch: generate_regression_tasks(3, 10)

def train(name, epochs, **kw):
    learner = LEARNERS[name]()
    opt = SGD(learner.parameters(), lr=0.5) if name == "Reptile+SGD" else None  # (the interpolation)
    history = learner.meta_learn(tasks(name), opt, epochs=epochs, tasks_per_batch=2, **kw)
    return learner, opt or learner.default_optimizer(), history

def state(learner, opt):
    arrays = [t.numpy() for t in learner.state_dict().values()]
    for s in opt.state_dict()["state"].values():
        arrays += [v.numpy() for v in s.values() if hasattr(v, "numpy")]
    return arrays

for name in LEARNERS:
    path = sys.argv[1] + "/" + name + ".safetensors"
    nx.manual_seed(3)
    whole = train(name, 4)
    nx.manual_seed(3)
    train(name, 2, checkpoint=path)
    nx.manual_seed(99)  # the resumed run must not depend on the state it starts in
    resumed = train(name, 4, resume=path)
    assert resumed[2] == whole[2], (name, resumed[2], whole[2])
    a, b = state(*whole[:2]), state(*resumed[:2])
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b)), name
    print("bit-exact:", name)
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_resuming_is_bit_exact_for_every_learner(tmp_path, backend):
    run = subprocess.run(python_on(backend)(EXACT, tmp_path), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("bit-exact:") == 12, run.stdout


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
    assert history == expected
    for k, v in whole.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), resumed.state_dict()[k].numpy(), err_msg=k)


# -- refusals -----------------------------------------------------------------------------------------
def saved_run(path, epochs=2, **kw):
    MAML(mlp(), inner_steps=1).meta_learn(sine_tasks(3), epochs=epochs, checkpoint=path, **kw)


def rewrite(path, change):
    """Re-save ``path`` with ``change(metadata)`` applied to its meta_learn metadata (checksum recomputed:
    these files are well-formed, only what they say is wrong)."""
    from neurenix.meta.checkpoint import read_safetensors, write_safetensors

    tensors, meta = read_safetensors(path)
    doc = json.loads(meta["neurenix"])
    change(doc["metadata"])
    write_safetensors(path, tensors, {"neurenix": json.dumps(doc)})


def assert_refused(path, error, match, **kw):
    learner = MAML(mlp(seed=5), inner_steps=1)
    before = [t.numpy().copy() for t in learner.state_dict().values()]
    rng = nx.random.get_rng_state()
    with pytest.raises(error, match=match):
        learner.meta_learn(sine_tasks(3), **{"epochs": 4} | kw, resume=path)
    assert all(np.array_equal(a, t.numpy()) for a, t in zip(before, learner.state_dict().values()))
    assert not learner.default_optimizer().state and nx.random.get_rng_state() == rng


@pytest.mark.parametrize("change, match", [
    (lambda m: m.update(epoch=-5), r"the epoch -5 is not an int >= 0"),
    (lambda m: m.update(epoch=1.5), r"the epoch 1.5 is not an int >= 0"),
    (lambda m: m.update(epoch=True), r"the epoch True is not an int >= 0"),
    (lambda m: m.pop("rng"), r"has \['epoch', 'history'\] but lacks \['rng'\]"),
    (lambda m: m.update(history=[1.0, 2.0]), r"the history must map 'loss'"),
    (lambda m: m.update(history={"loss": [1.0]}), r"'loss' must have one entry per epoch done \(2\), got 1 entries"),
    (lambda m: m["history"].update(loss=["a", 1.0]), r"'loss' holds something other than finite numbers"),
    (lambda m: m["history"].update(accuracy=[0.5, 0.5], extra=[]), r"the history must map 'loss'"),
    (lambda m: m.update(rng={"bit_generator": "PCG64", "state": 3}), r"the random state is not a PCG64 state"),
    (lambda m: m.update(rng={"bit_generator": "MT19937"}), r"the random state is not a PCG64 state"),
    (lambda m: m.update(settings=[1]), r"the settings \[1\] are not an object"),
], ids=["epoch-negative", "epoch-float", "epoch-bool", "no-rng", "history-list", "history-short", "history-strings",
        "history-keys", "rng-garbage", "rng-other-kind"] + ["settings-list"])
def test_altered_progress_metadata_is_refused_before_anything_changes(tmp_path, change, match):
    path = tmp_path / "run.safetensors"
    saved_run(path)
    rewrite(path, change)
    assert_refused(path, CheckpointError, match)


def test_a_checkpoint_past_the_requested_epochs_is_refused(tmp_path):
    path = tmp_path / "run.safetensors"
    saved_run(path, epochs=3)
    assert_refused(path, ValueError, r"is at epoch 3, past epochs=2: pass epochs >= 3", epochs=2)
    assert MAML(mlp(), inner_steps=1).meta_learn(sine_tasks(3), epochs=3, resume=path)["loss"]  # done: nothing to do


@pytest.mark.parametrize("make, kw, match", [
    (lambda: MAML(mlp(seed=5), inner_steps=2), {}, r"inner_steps 1 \(now 2\)"),
    (lambda: MAML(mlp(seed=5), inner_steps=1, inner_lr=0.02), {}, r"inner_lr 0.01 \(now 0.02\)"),
    (lambda: MAML(mlp(seed=5), inner_steps=1, first_order=True), {}, r"first_order false \(now true\)"),
    (lambda: MAML(mlp(seed=5), inner_steps=1), {"tasks_per_batch": 2}, r"tasks_per_batch 4 \(now 2\)"),
    (lambda: MAML(mlp(seed=5), inner_steps=1), {"shuffle": False}, r"shuffle true \(now false\)"),
    (lambda: MAML(mlp(seed=5), inner_steps=1), {"settings": {"seed": 1}}, r"seed \(unset\) \(now 1\)"),
], ids=["inner_steps", "inner_lr", "first_order", "tasks_per_batch", "shuffle", "caller-settings"])
def test_a_checkpoint_of_a_run_with_other_settings_is_refused_naming_them(tmp_path, make, kw, match):
    path = tmp_path / "run.safetensors"
    saved_run(path)
    learner = make()
    before = [t.numpy().copy() for t in learner.state_dict().values()]
    with pytest.raises(ValueError, match=match):
        learner.meta_learn(sine_tasks(3), epochs=4, resume=path, **kw)
    assert all(np.array_equal(a, t.numpy()) for a, t in zip(before, learner.state_dict().values()))


def test_a_learner_of_another_kind_is_refused(tmp_path):
    path = tmp_path / "run.safetensors"
    saved_run(path)
    reptile = Reptile(mlp(), inner_steps=1)
    with pytest.raises(CheckpointError, match="holds Adam state, not SGD"):
        reptile.meta_learn(sine_tasks(3), SGD(reptile.parameters(), lr=0.5), epochs=4, resume=path)


def test_a_checkpoint_without_progress_starts_at_epoch_0_from_its_weights(tmp_path):
    save_checkpoint(tmp_path / "plain.safetensors", MAML(mlp(seed=4), inner_steps=1))
    expected, learner = MAML(mlp(seed=4), inner_steps=1), MAML(mlp(), inner_steps=1)
    nx.manual_seed(1)
    history = expected.meta_learn(sine_tasks(3), epochs=1)
    nx.manual_seed(1)
    assert learner.meta_learn(sine_tasks(3), epochs=1, resume=tmp_path / "plain.safetensors") == history
    for a, b in zip(expected.state_dict().values(), learner.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
