"""Varied episodes: EpisodeSampler follows Meta-Dataset's recipe, and meta-batches of tasks of different ways
and imbalanced shots give every learner the same meta-objective batched by shape as looped, compiled as eager."""

import math
import warnings

import numpy as np
import pytest

import neurenix as nx
from meta_helpers import assert_close_lists, meta_grad, mlp
from neurenix.meta import (
    ANIL,
    MAML,
    EpisodeSampler,
    MetaSGD,
    PrototypicalNetworks,
    RelationNetworks,
    Reptile,
    evaluate,
    iMAML,
)
from neurenix.meta.tasks import batches, check_tasks

SIZES = [4, 5, 6, 9, 12, 20, 31, 40, 7, 16, 25, 3]  # examples per class: small classes bound the query size


def traced(sizes=SIZES):
    """Rows recording their class (feature 0) and their index (feature 1), labels 0, 10, 20, ..."""
    y = np.repeat(np.arange(len(sizes)) * 10, sizes)
    return np.stack([y, np.arange(len(y))], axis=1).astype(np.float64), y


def composition(task):
    """(original classes by label, support rows by label, query rows by label, row indices) of a task."""
    sx, sy, qx, qy = (t.numpy() for t in task)
    sy, qy = (v.argmax(1) if v.ndim == 2 else v for v in (sy, qy))
    ways = int(sy.max()) + 1
    originals = [set(np.concatenate([sx[sy == c, 0], qx[qy == c, 0]]).tolist()) for c in range(ways)]
    assert all(len(o) == 1 for o in originals), "a label holds rows of several classes"
    return [o.pop() for o in originals], np.bincount(sy, minlength=ways), np.bincount(qy, minlength=ways), \
        np.concatenate([sx[:, 1], qx[:, 1]])


def test_episodes_follow_the_recipe():
    x, y = traced()
    size = dict(zip(np.unique(y).tolist(), SIZES))
    sampler = EpisodeSampler(x, y, min_ways=3, max_ways=8, max_query_per_class=4, max_support=30,
                             max_support_contribution=6, seed=0)
    ways_seen, fill = [], []
    for task in sampler.sample(300):
        classes, shots, queries, rows = composition(task)
        ways, n = len(classes), np.array([size[c] for c in classes])
        assert 3 <= ways <= 8 and len(set(classes)) == ways
        assert np.all(np.diff(task[1].numpy()) >= 0)  # support rows grouped by class, label by label
        assert len(set(rows.tolist())) == len(rows)  # distinct examples
        q = min(4, n.min() // 2)
        assert np.all(queries == q)  # balanced query set, at most half of the smallest class
        left = n - q
        assert np.all(shots >= 1) and np.all(shots <= left)  # a shot per class at least, within what is left
        budget = min(30, np.minimum(6, left).sum())  # beta <= 1: at most the classes' capped contributions
        assert ways <= shots.sum() <= budget
        ways_seen.append(ways)
        fill.append(shots.sum() / np.minimum(6, left).sum())
    counts = np.bincount(ways_seen, minlength=9)[3:]
    assert counts.min() > 300 / 6 * 0.5, counts  # uniform over 3..8
    assert min(fill) < 0.35 and max(fill) > 0.9  # beta spans (0, 1]


def test_support_shares_follow_class_sizes():
    """With alpha fixed at 0 the shares are the classes' sizes: a class of three times the examples gets three
    times the shots beyond the first, to within rounding; with the default log-weights they scatter."""
    x, y = traced([20, 60] * 4)
    big = {c for c, n in zip(np.unique(y).tolist(), [20, 60] * 4) if n == 60}
    ratios = {0.0: [], math.log(2): []}
    for log_weight in ratios:
        sampler = EpisodeSampler(x, y, min_ways=4, max_ways=4, min_log_weight=-log_weight, max_log_weight=log_weight,
                                 seed=1)
        for task in sampler.sample(200):
            classes, shots, _, _ = composition(task)
            small_shots = {int(k) for c, k in zip(classes, shots) if c not in big}
            big_shots = {int(k) for c, k in zip(classes, shots) if c in big}
            if small_shots and big_shots:
                if log_weight == 0:
                    assert len(small_shots) == len(big_shots) == 1  # equal sizes, equal shares
                    (ks,), (kb,) = small_shots, big_shots
                    if ks < 10:  # not capped by the 20 - 10 examples left after the query
                        assert 0 <= (kb - 1) - 3 * (ks - 1) <= 2, (ks, kb)  # floor(3 s) - 3 floor(s): 0, 1 or 2
                ratios[log_weight] += [kb / ks for ks in small_shots for kb in big_shots if 2 < ks < 10]
    assert np.ptp(ratios[0.0]) < 1.5 and np.ptp(ratios[math.log(2)]) > 3


def test_the_support_budget_binds():
    x, y = traced([40] * 12)
    for task in EpisodeSampler(x, y, min_ways=5, max_ways=12, max_support=12, seed=2).sample(50):
        _, shots, queries, _ = composition(task)
        assert len(shots) <= shots.sum() <= 12 and np.all(queries == 10)


@pytest.mark.parametrize("one_hot", [False, True], ids=["indices", "one-hot"])
def test_episodes_are_seeded_and_as_tasksampler_makes_them(one_hot):
    x, y = traced()
    kw = {"min_ways": 3, "max_ways": 6, "one_hot": one_hot, "dtype": nx.float64}
    a, b = (EpisodeSampler(x, y, seed=5, **kw).sample(4) for _ in range(2))
    c = EpisodeSampler(x, y, seed=6, **kw).sample(4)
    assert all(np.array_equal(s.numpy(), t.numpy()) for ta, tb in zip(a, b) for s, t in zip(ta, tb))
    assert any(not np.array_equal(ta[0].numpy(), tc[0].numpy()) for ta, tc in zip(a, c))
    nx.manual_seed(3)
    d = EpisodeSampler(x, y, **kw).sample(2)  # no seed: neurenix's generator
    nx.manual_seed(3)
    e = EpisodeSampler(x, y, **kw).sample(2)
    assert np.array_equal(d[1][2].numpy(), e[1][2].numpy())
    for sx, sy, qx, qy in a:
        assert sx.dtype == qx.dtype == nx.float64
        if one_hot:
            assert sy.dtype == nx.float64 and sy.shape[1] == qy.shape[1] == int(sy.numpy().argmax(1).max()) + 1
        else:
            assert sy.dtype == qy.dtype == nx.int64
    labels = [composition(t)[0] for t in EpisodeSampler(x, y, min_ways=3, max_ways=3, seed=0).sample(30)]
    assert len({tuple(c) for c in labels}) > 20  # classes and their labels vary from episode to episode


@pytest.mark.parametrize("kw, error, match", [
    ({"min_ways": 13, "max_ways": 20}, ValueError, "min_ways=13 needs 13 classes, the data has 12"),
    ({"min_ways": 1}, ValueError, "min_ways must be an int >= 2, got 1"),
    ({"min_ways": 6, "max_ways": 5}, ValueError, "max_ways must be an int >= 6, got 5"),
    ({"max_query_per_class": 0}, ValueError, "max_query_per_class must be an int >= 1, got 0"),
    ({"max_support": -3}, ValueError, "max_support must be an int >= 1, got -3"),
    ({"max_support_contribution": 0}, ValueError, "max_support_contribution must be an int >= 1, got 0"),
    ({"max_support": 7, "max_ways": 8}, ValueError, r"max_support=7 is below the 8 ways an episode can have"),
    ({"min_log_weight": 1.0}, ValueError, r"max_log_weight 0.69\d* is below min_log_weight 1.0"),
    ({"max_log_weight": math.inf}, ValueError, "max_log_weight must be a finite number, got inf"),
    ({"min_log_weight": "low"}, TypeError, "min_log_weight must be a finite number, got 'low'"),
    ({"seed": -1}, ValueError, "seed must be an int >= 0, got -1"),
    ({"one_hot": "yes"}, TypeError, "one_hot must be True or False"),
], ids=lambda v: str(v)[:40] if isinstance(v, dict) else "")
def test_bad_arguments_are_named(kw, error, match):
    x, y = traced()
    with pytest.raises(error, match=match):
        EpisodeSampler(x, y, **{"min_ways": 3, "max_ways": 6} | kw)


def test_classes_too_small_are_named():
    x, y = traced([1, 5, 6, 1, 8])
    with pytest.raises(ValueError, match=r"episodes \(one support and one query row at least\) need 2 examples "
                                         r"per class; class a \(1\), class d \(1\) have fewer"):
        EpisodeSampler(x, y // 10, min_ways=2, class_names=list("abcde"))
    with pytest.raises(ValueError, match="num_tasks must be an int >= 0, got -2"):
        EpisodeSampler(*traced(), min_ways=2).sample(-2)
    with pytest.raises(ValueError, match=r"EpisodeSampler: x \(3, 2\) and y \(2,\) must have one label per row"):
        EpisodeSampler(np.zeros((3, 2)), np.zeros(2))


# -- learners on varied episodes ---------------------------------------------------------------------------
WAYS = 4  # the most ways of the episodes below: a model head needs as many outputs


def varied_tasks(n=7, seed=0):
    """Float64 episodes of 2..4 ways and imbalanced shots (seed 0: of four shapes, three stacks of two)."""
    g = np.random.default_rng(0)
    sizes = [4, 5, 6, 5, 4, 7, 6, 5]
    y = np.repeat(np.arange(len(sizes)), sizes)
    x = g.normal(size=(len(y), 3)) + y[:, None] * 0.3
    return EpisodeSampler(x, y, min_ways=2, max_ways=WAYS, max_query_per_class=2, max_support=6, seed=seed,
                          dtype=nx.float64).sample(n)


def _embedding():
    return mlp(1, sizes=(3, 5, 4))


LEARNERS = {
    "maml": lambda: MAML(mlp(0, sizes=(3, 6, WAYS)), inner_lr=0.3, inner_steps=2),
    "imaml": lambda: iMAML(mlp(0, sizes=(3, 6, WAYS)), inner_lr=0.1, inner_steps=3, cg_steps=3),
    "anil": lambda: ANIL(mlp(0, sizes=(3, 6, WAYS)), inner_lr=0.3, inner_steps=2),
    "metasgd": lambda: MetaSGD(mlp(0, sizes=(3, 6, WAYS)), inner_lr=0.3),
    "protonets": lambda: PrototypicalNetworks(_embedding()),
    "relation": lambda: RelationNetworks(_embedding(), mlp(2, sizes=(8, 5, 1))),
}


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_varied_meta_batch_batched_equals_looped(name):
    learner, tasks = LEARNERS[name](), varied_tasks()
    assert [b.size for b in batches(check_tasks(tasks))] == [2, 2, 1, 2]  # several shapes, stacks of several
    assert {len(set(np.bincount(t[1].numpy()).tolist())) for t in tasks} == {1, 2}  # imbalanced shots, some
    batched, looped = (learner.meta_loss(tasks, batch_tasks=b).item() for b in (True, False))
    assert math.isfinite(batched) and batched == pytest.approx(looped, rel=1e-12)
    assert batched == pytest.approx(sum(learner.meta_loss([t]).item() for t in tasks), rel=1e-12)
    assert_close_lists(meta_grad(learner, tasks), meta_grad(learner, tasks, batch_tasks=False), rtol=1e-9,
                       atol=1e-12)


@pytest.mark.parametrize("name", ["protonets", "relation", "maml"])
def test_equal_shapes_of_different_ways_do_not_share_a_stack(name):
    """Two tasks of equal shapes, one 2-way and one 4-way (int64 labels: the shapes do not tell): a stack of
    both would give the 2-way task two empty classes (ProtoNets: prototypes 0/0, a NaN loss)."""
    g = np.random.default_rng(1)

    def task(support, query):
        return (nx.tensor(g.normal(size=(len(support), 3))), nx.tensor(support, dtype=nx.int64),
                nx.tensor(g.normal(size=(len(query), 3))), nx.tensor(query, dtype=nx.int64))

    tasks = [task([0, 0, 1, 1], [0, 1, 1, 0]), task([0, 1, 2, 3], [3, 2, 1, 0]), task([1, 1, 0, 0], [1, 0, 0, 0])]
    assert [b.indices for b in batches(check_tasks(tasks))] == [(0, 2), (1,)]
    learner = LEARNERS[name]()
    batched, looped = (learner.meta_loss(tasks, batch_tasks=b).item() for b in (True, False))
    assert math.isfinite(batched) and batched == pytest.approx(looped, rel=1e-12)


def test_prototypes_of_an_imbalanced_support_set_are_class_means():
    net = LEARNERS["protonets"]()
    sx, sy, _, _ = varied_tasks()[1]
    labels, emb = sy.numpy(), net.embedding_model(sx).numpy()
    assert len(set(np.bincount(labels).tolist())) > 1  # imbalanced
    expected = np.stack([emb[labels == c].mean(0) for c in range(labels.max() + 1)])
    np.testing.assert_allclose(net.compute_prototypes(sx, sy).numpy(), expected, rtol=1e-12, atol=1e-14)


def _train(name, epochs, compile):
    learner = LEARNERS[name]()
    with warnings.catch_warnings():  # (not shuffled: a shuffle would order a meta-batch's shape groups anew)
        warnings.simplefilter("error", nx.CaptureWarning)
        history = learner.meta_learn(lambda e: epochs[e], epochs=len(epochs), tasks_per_batch=3, compile=compile,
                                     shuffle=False)
    return learner, history, [p.numpy().copy() for p in learner.parameters()]


@pytest.mark.parametrize("name", ["maml", "imaml", "protonets", "relation"])
def test_meta_learn_compiled_equals_eager_on_varied_episodes(name):
    """Epochs A, B, A, B, A: A is traced (the first step), B runs eagerly (new shapes), A replays, B is traced at
    its second sight, A replays; the result is the eager run's, bit for bit."""
    a, b = varied_tasks(3, seed=1), varied_tasks(3, seed=2)
    assert {t[0].shape for t in a} != {t[0].shape for t in b}
    learner, history, params = _train(name, [a, b, a, b, a], compile=True)
    _, history_eager, params_eager = _train(name, [a, b, a, b, a], compile=False)
    assert history == history_eager
    for p, q in zip(params, params_eager):
        np.testing.assert_array_equal(p, q)
    stats = learner.__dict__["_compiled_gradient"].stats
    assert stats == {"traces": 2, "replays": 2, "eager": 0}, stats


def test_episodes_of_new_shapes_run_eagerly_without_retracing():
    """Twenty-five meta-batches of new shapes: one trace (the first step), no warning, no give-up; before, every
    step traced (a few eager steps' time each) until neurenix.compile gave up with a CaptureWarning."""
    x, y = np.random.default_rng(0).normal(size=(120, 3)), np.repeat(np.arange(12), 10)
    sampler = EpisodeSampler(x, y, min_ways=3, max_ways=WAYS, max_support=20, seed=0, dtype=nx.float64)
    learner = LEARNERS["protonets"]()
    with warnings.catch_warnings():
        warnings.simplefilter("error", nx.CaptureWarning)
        learner.meta_learn(lambda e: sampler.sample(2), epochs=25, tasks_per_batch=2)
    compiled = learner.__dict__["_compiled_gradient"]
    assert compiled.stats["traces"] == 1 and compiled._off is None, compiled.stats


def test_accuracy_bookkeeping_weighs_tasks_by_their_query_rows():
    learner = PrototypicalNetworks(_embedding(), meta_lr=0.0)  # no update: the epoch's numbers are computable
    tasks = varied_tasks()
    right = rows = 0
    for sx, sy, qx, qy in tasks:
        right += int((learner(qx, sx, sy).argmax(dim=-1) == qy).sum().item())
        rows += qy.shape[0]
    history = learner.meta_learn(tasks, epochs=1, tasks_per_batch=4)
    assert history["accuracy"] == [right / rows]
    assert history["loss"][0] == pytest.approx(learner.meta_loss(tasks).item() / len(tasks), rel=1e-12)


@pytest.mark.parametrize("name", ["maml", "protonets"])
def test_evaluate_on_varied_episodes(name):
    learner, tasks = LEARNERS[name](), varied_tasks()
    compiled, eager = (evaluate(learner, tasks, compile=c) for c in (True, False))
    np.testing.assert_array_equal(compiled.values, eager.values)
    for t, score in zip(tasks, eager.values):
        sx, sy, qx, qy = t
        pred = learner.adapt_to_task(sx, sy, compile=False)(qx)
        assert score == pytest.approx((pred.argmax(dim=-1) == qy).float().mean().item())


def test_reptile_on_varied_episodes_batched_equals_looped():
    """Reptile has no meta_loss gradient to compare; it trains on varied episodes, batched as looped."""
    tasks = varied_tasks()
    results = []
    for batch_tasks in (True, False):
        learner = Reptile(mlp(0, sizes=(3, 6, WAYS)), inner_lr=0.1, inner_steps=2)
        nx.manual_seed(3)
        learner.meta_learn(tasks, epochs=1, tasks_per_batch=7, batch_tasks=batch_tasks, compile=False)
        results.append([p.numpy().copy() for p in learner.parameters()])
    assert_close_lists(*results, rtol=1e-10, atol=1e-12)
