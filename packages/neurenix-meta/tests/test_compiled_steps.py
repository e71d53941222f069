"""meta_learn, adapt_to_task and evaluate with their steps compiled (the default) equal the eager steps, bit
for bit, for every learner: each parameter, the optimizer's state and the history."""

import warnings

import numpy as np
import pytest

import neurenix as nx
from neurenix import nn
from neurenix.meta import (
    ANIL,
    MAML,
    R2D2,
    MetaSGD,
    PrototypicalNetworks,
    RelationNetworks,
    Reptile,
    evaluate,
    iMAML,
)

from .meta_helpers import class_tasks, mlp, sine_tasks


def _bn_net(seed):
    nx.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).double()


def _embedding(seed):
    nx.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 4)).double()


def _relation(seed):
    nx.manual_seed(seed + 1)
    return nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 1)).double()


LEARNERS = {
    "maml": lambda s: (MAML(mlp(s), inner_lr=0.05, inner_steps=2), "sine"),
    "fomaml": lambda s: (MAML(mlp(s), inner_lr=0.05, inner_steps=2, first_order=True), "sine"),
    "maml-checkpointed": lambda s: (MAML(mlp(s), inner_lr=0.05, inner_steps=3, checkpoint_inner_loop=True), "sine"),
    "maml++": lambda s: (MAML(mlp(s), inner_lr=0.05, inner_steps=2, per_step_lr=True,
                              multi_step_weights=[0.3, 0.7]), "sine"),
    "maml-batchnorm": lambda s: (MAML(_bn_net(s), inner_lr=0.05, inner_steps=2), "class"),
    "maml-bn-inductive": lambda s: (MAML(_bn_net(s), inner_lr=0.05, inner_steps=2, batch_norm="inductive"), "class"),
    "maml-bn-per-step": lambda s: (MAML(_bn_net(s), inner_lr=0.05, inner_steps=2, batch_norm="per_step"), "class"),
    "anil": lambda s: (ANIL(mlp(s), inner_lr=0.05, inner_steps=2), "sine"),
    "metasgd": lambda s: (MetaSGD(mlp(s), inner_lr=0.05), "sine"),
    "maml-adam": lambda s: (MAML(mlp(s), inner_lr=0.05, inner_steps=2, inner_optimizer="adam"), "sine"),
    "imaml": lambda s: (iMAML(mlp(s), inner_lr=0.05, inner_steps=3, cg_steps=2), "sine"),
    "imaml-batchnorm": lambda s: (iMAML(_bn_net(s), inner_lr=0.05, inner_steps=2, cg_steps=2), "class"),
    "reptile": lambda s: (Reptile(mlp(s), inner_lr=0.05, inner_steps=3), "sine"),
    "protonets": lambda s: (PrototypicalNetworks(_embedding(s)), "class"),
    "relation": lambda s: (RelationNetworks(_embedding(s), _relation(s)), "class"),
    "r2d2": lambda s: (R2D2(_embedding(s)), "class"),
}


def _train(name, compile, epochs=3):
    learner, kind = LEARNERS[name](0)
    tasks = sine_tasks(6, rows=5) if kind == "sine" else class_tasks(6, int_labels=True)
    nx.manual_seed(7)  # the shuffles
    with warnings.catch_warnings():
        warnings.simplefilter("error", nx.CaptureWarning)  # a step that falls back to eager fails the test
        history = learner.meta_learn(tasks, epochs=epochs, tasks_per_batch=2, compile=compile)
    state = [p.numpy().copy() for p in learner.parameters()] + [b.numpy().copy() for b in learner.buffers()]
    optimizer = learner.default_optimizer()
    state += [v.numpy().copy() for s in optimizer.state.values() for v in s.values() if isinstance(v, nx.Tensor)]
    return learner, history, state


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_meta_learn_compiled_equals_eager(name):
    learner, history, state = _train(name, compile=True)
    _, history_eager, state_eager = _train(name, compile=False)
    assert history == history_eager
    assert len(state) == len(state_eager)
    for a, b in zip(state, state_eager):
        np.testing.assert_array_equal(a, b)
    stats = learner.__dict__["_compiled_gradient"].stats
    assert stats["replays"] >= 3 and stats["eager"] == 0, stats  # it replayed: the comparison is not eager vs eager


@pytest.mark.parametrize("name", ["maml", "maml++", "anil", "metasgd", "reptile", "maml-batchnorm",
                                  "maml-bn-inductive", "maml-bn-per-step"])
def test_adapt_and_evaluate_compiled_equal_eager(name):
    learner, kind = LEARNERS[name](0)
    tasks = sine_tasks(4, rows=5) if kind == "sine" else class_tasks(4, int_labels=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", nx.CaptureWarning)
        scores = [evaluate(learner, tasks, steps=2, compile=c).values for c in (True, False)]
        sx, sy = tasks[1][:2]
        adapted = [learner.adapt_to_task(sx, sy, 2, compile=c) for c in (True, False)]
    np.testing.assert_array_equal(*scores)
    for a, b in zip(*(m.parameters() for m in adapted)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert learner.__dict__["_compiled_adaptation"].stats["replays"] >= 3


def test_compiled_steps_keep_finding_non_finite_updates():
    """A step whose gradient is not finite is refused on replay as on the eager path."""
    learner = MAML(mlp(0), inner_lr=0.05, inner_steps=1)
    tasks = sine_tasks(4, rows=5)
    learner.meta_learn(tasks, epochs=2, tasks_per_batch=2)  # traced and replayed
    bad = [(sx, sy * np.nan, qx, qy) for sx, sy, qx, qy in tasks]
    before = [p.numpy().copy() for p in learner.parameters()]
    with pytest.raises(FloatingPointError, match="not taken"):
        learner.meta_learn(bad, epochs=1, tasks_per_batch=2, shuffle=False)
    for p, b in zip(learner.parameters(), before):
        np.testing.assert_array_equal(p.numpy(), b)


def test_compiled_steps_check_labels_on_replay():
    """Class labels out of range raise on a replayed step too, naming the labels, instead of a wrong loss."""
    learner = PrototypicalNetworks(_embedding(0))
    tasks = class_tasks(4, int_labels=True)
    learner.meta_learn(tasks, epochs=2, tasks_per_batch=2)
    assert learner.__dict__["_compiled_gradient"].stats["replays"] > 0
    sx, sy, qx, qy = tasks[0]
    with pytest.raises((IndexError, ValueError)):
        learner.meta_learn([(sx, sy, qx, qy + 5)] * 2, epochs=1, tasks_per_batch=2)


def test_new_shapes_trace_again():
    learner = MAML(mlp(0), inner_lr=0.05, inner_steps=1)
    learner.meta_learn(sine_tasks(4, rows=5), epochs=2, tasks_per_batch=2)
    compiled = learner.__dict__["_compiled_gradient"]
    held = len(compiled.programs())  # (the very first step's, before Adam had state, and the next one's)
    learner.meta_learn(sine_tasks(4, rows=7), epochs=2, tasks_per_batch=2)
    assert len(compiled.programs()) == held + 1
    assert compiled.stats["eager"] == 0 and compiled.stats["replays"] >= 4


def test_fresh_tasks_every_epoch_replay():
    learner = MAML(mlp(0), inner_lr=0.05, inner_steps=1, first_order=True)
    history = learner.meta_learn(lambda e: sine_tasks(2, rows=5, seed=e), epochs=4, tasks_per_batch=2)
    assert len(history["loss"]) == 4
    assert learner.__dict__["_compiled_gradient"].stats["replays"] >= 2


@pytest.mark.parametrize("name", ["maml-bn-inductive", "maml-bn-per-step"])
def test_compiled_adaptation_reads_the_statistics_of_now(name):
    """The compiled adaptation reads the learner's running statistics where they are: after more training moved
    them, a replay adapts as an eager run does (not with the values of its capture)."""
    learner, _ = LEARNERS[name](0)
    tasks = class_tasks(4, int_labels=True)
    sx, sy = tasks[0][:2]
    for _ in range(2):
        adapted = [learner.adapt_to_task(sx, sy, 2, compile=c) for c in (True, True, False)]
        for a, b in zip(adapted[1].parameters(), adapted[2].parameters()):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-9)  # (traced anew: sums reordered)
        learner.meta_learn(tasks, epochs=1, tasks_per_batch=2)  # moves the statistics
    assert learner.__dict__["_compiled_adaptation"].stats["replays"] >= 2


def test_a_trained_learner_copies_and_pickles_without_its_compiled_steps():
    """copy.deepcopy and pickle leave the compiled steps behind (bound to the original, holding locks); the copy
    compiles its own and trains on exactly as the original."""
    import copy
    import pickle

    tasks = class_tasks(4, seed=0)
    net = PrototypicalNetworks(_embedding(0))
    net.meta_learn(tasks, epochs=2, tasks_per_batch=4)
    twins = [copy.deepcopy(net), pickle.loads(pickle.dumps(net))]
    nx.manual_seed(1)  # (meta_learn draws the tasks' order)
    net.meta_learn(tasks, epochs=2, tasks_per_batch=4)
    for twin in twins:
        assert "_compiled_gradient" not in twin.__dict__
        nx.manual_seed(1)
        twin.meta_learn(tasks, epochs=2, tasks_per_batch=4)
        for a, b in zip(net.parameters(), twin.parameters()):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-9)  # (traced anew: sums reordered)
