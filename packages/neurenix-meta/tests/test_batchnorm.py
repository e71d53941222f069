"""BatchNorm in meta-learning: second-order meta-gradients through Conv + BatchNorm against finite
differences (batched and looped), per-task batch statistics, and running statistics that never carry
one task's data into another."""

import numpy as np
import pytest

import neurenix as nx
from meta_helpers import assert_close_lists, conv_bn, finite_difference, image_tasks, meta_grad
from neurenix.meta import ANIL, MAML, MetaSGD, Reptile, iMAML


def buffers(model):
    return {n: b.numpy().copy() for n, b in model.named_buffers()}


@pytest.mark.parametrize("checkpointed", [False, True], ids=["plain", "checkpointed"])
@pytest.mark.parametrize("batch_tasks", [True, False], ids=["batched", "looped"])
def test_second_order_meta_gradient_through_conv_batchnorm_equals_finite_differences(batch_tasks, checkpointed):
    maml = MAML(conv_bn(), inner_lr=0.3, inner_steps=2, checkpoint_inner_loop=checkpointed)
    tasks = image_tasks(n=2)
    analytic = meta_grad(maml, tasks, batch_tasks=batch_tasks)
    numeric = finite_difference(lambda: maml.meta_loss(tasks, batch_tasks=batch_tasks).item(),
                                list(maml.parameters()))
    assert_close_lists(analytic, numeric, rtol=1e-6, atol=1e-9)


def test_each_task_is_normalised_by_its_own_statistics():
    maml = MAML(conv_bn(), inner_lr=0.3, inner_steps=2)
    tasks = image_tasks(n=3)
    together = maml.meta_loss(tasks).item()
    alone = sum(maml.meta_loss([t]).item() for t in tasks)
    np.testing.assert_allclose(together, alone, rtol=1e-12)
    maml.eval()  # batch statistics in meta-learning whatever the mode: the running ones are never read
    np.testing.assert_allclose(maml.meta_loss(tasks).item(), together, rtol=1e-12)


@pytest.mark.parametrize("learner", [MAML, ANIL, MetaSGD, Reptile, iMAML])
def test_meta_training_neither_reads_nor_writes_running_statistics(learner):
    model = conv_bn()
    with nx.no_grad():  # garbage running statistics: if they were read, the losses would change
        model[1].running_mean.copy_(nx.tensor([5.0, -3.0], dtype=nx.float64))
        model[1].running_var.copy_(nx.tensor([9.0, 0.01], dtype=nx.float64))
    before = buffers(model)
    kw = {"inner_steps": 2} if learner is not Reptile else {"inner_steps": 2, "meta_lr": 0.1}
    nx.manual_seed(0)
    history = learner(model, inner_lr=0.1, **kw).meta_learn(image_tasks(4), epochs=2, tasks_per_batch=2)
    for name, value in buffers(model).items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    fresh = conv_bn()  # same weights, default running statistics: the same training
    nx.manual_seed(0)
    assert learner(fresh, inner_lr=0.1, **kw).meta_learn(image_tasks(4), epochs=2, tasks_per_batch=2) == history


@pytest.mark.parametrize("learner", [MAML, Reptile])
def test_adapted_copy_holds_its_support_sets_statistics_only(learner):
    meta = learner(conv_bn(), inner_lr=0.1, inner_steps=2)
    with nx.no_grad():
        meta.model[1].running_mean.copy_(nx.tensor([5.0, -3.0], dtype=nx.float64))
    sx, sy, qx, _ = image_tasks(1)[0]
    adapted = meta.adapt_to_task(sx, sy)
    with nx.no_grad():
        h = adapted[0](sx).numpy()  # what the BatchNorm layer sees: the adapted conv's output on the support set
    bn = adapted[1]
    np.testing.assert_allclose(bn.running_mean.numpy(), h.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), h.var(axis=(0, 2, 3), ddof=1), rtol=1e-12)
    assert bn.num_batches_tracked.item() == 1 and bn.momentum == 0.1 and adapted.training
    adapted.eval()  # normalises the query with the support set's statistics: independent of the other rows
    np.testing.assert_allclose(adapted(qx[:1]).numpy(), adapted(qx).numpy()[:1], rtol=1e-12)
    np.testing.assert_array_equal(meta.model[1].running_mean.numpy(), [5.0, -3.0])


# -- BatchNorm modes: transductive (above), inductive and per-step running statistics ------------------------
MODES = ["inductive", "per_step"]


def unit_momentum(model):
    """Momentum 1: a running statistic becomes the last batch's exactly, which the tests can compute."""
    model[1].momentum = 1.0
    return model


def prefix_stats(model, xs):
    """Mean over tasks of each task's batch mean and unbiased variance at the BatchNorm's input (the conv's
    output at the model's own weights)."""
    outs = [model[0](x).detach().numpy() for x in xs]
    means = [o.mean(axis=(0, 2, 3)) for o in outs]
    var = [o.var(axis=(0, 2, 3), ddof=1) for o in outs]
    return np.mean(means, 0), np.mean(var, 0)


@pytest.mark.parametrize("mode", MODES)
def test_meta_gradient_is_the_transductive_one_and_matches_finite_differences(mode):
    """In meta-training every pass normalises by batch statistics: the modes differ only in what they
    accumulate, so the meta-gradient is the transductive one (and finite differences agree)."""
    tasks = image_tasks(n=2)
    plain = MAML(conv_bn(), inner_lr=0.3, inner_steps=2)
    maml = MAML(conv_bn(), inner_lr=0.3, inner_steps=2, batch_norm=mode)
    analytic = meta_grad(maml, tasks)
    assert_close_lists(analytic, meta_grad(plain, tasks), rtol=1e-12)
    numeric = finite_difference(lambda: maml.meta_loss(tasks).item(), list(maml.model.parameters()))
    assert_close_lists(analytic[:len(numeric)], numeric, rtol=1e-6, atol=1e-9)
    assert_close_lists(meta_grad(maml, tasks, batch_tasks=False), analytic, rtol=1e-10)


def test_inductive_training_moves_the_running_statistics_to_the_query_passes():
    tasks = image_tasks(n=3)
    maml = MAML(unit_momentum(conv_bn()), inner_lr=0.3, inner_steps=0, batch_norm="inductive")
    maml.meta_loss(tasks)  # no inner step: the query pass runs at theta
    mean, var = prefix_stats(maml.model, [t[2] for t in tasks])
    np.testing.assert_allclose(maml.model[1].running_mean.numpy(), mean, rtol=1e-12)
    np.testing.assert_allclose(maml.model[1].running_var.numpy(), var, rtol=1e-12)


def test_per_step_statistics_follow_each_step():
    tasks = image_tasks(n=3)
    maml = MAML(unit_momentum(conv_bn()), inner_lr=0.3, inner_steps=1, batch_norm="per_step")
    before = buffers(maml.model)
    maml.meta_loss(tasks)
    first = maml.step_statistics.at(0)[0]
    mean, var = prefix_stats(maml.model, [t[0] for t in tasks])  # step 0: the support passes at theta
    np.testing.assert_allclose(first[0].numpy(), mean, rtol=1e-12)
    np.testing.assert_allclose(first[1].numpy(), var, rtol=1e-12)
    query = maml.step_statistics.at(1)[0]  # the query passes, at the adapted weights
    assert not np.allclose(query[0].numpy(), mean)
    assert maml.step_statistics.at(5)[0][0] is query[0]  # beyond the trained steps: the last set
    for name in ("1.running_mean", "1.running_var"):  # the layer's own statistics are not touched (its counter
        np.testing.assert_array_equal(buffers(maml.model)[name], before[name])  # counts the passes)


@pytest.mark.parametrize("mode", MODES)
def test_adapted_model_predicts_each_query_on_its_own(mode):
    """Inductive and per-step: adaptation and prediction normalise with the learned statistics, so a query's
    prediction does not depend on the others (transductive: it does)."""
    tasks = image_tasks(n=4)
    predictions = {}
    for m in ("transductive", mode):
        learner = MAML(conv_bn(), inner_lr=0.3, inner_steps=2, batch_norm=m)
        nx.manual_seed(0)
        learner.meta_learn(tasks, epochs=2, tasks_per_batch=2)
        sx, sy, qx, _ = tasks[0]
        adapted = learner.adapt_to_task(sx, sy)
        if m == "transductive":
            adapted.train()  # as a transductive model is used: batch statistics of the query set
        with nx.no_grad():
            predictions[m] = (adapted(qx).numpy(), np.concatenate([adapted(qx[i:i + 1]).numpy()
                                                                   for i in range(1, qx.shape[0])]))
    together, alone = predictions[mode]
    np.testing.assert_allclose(together[1:], alone, rtol=1e-12)
    together, alone = predictions["transductive"]
    assert not np.allclose(together[1:], alone, rtol=1e-6)  # the measure tells the two apart


@pytest.mark.parametrize("mode", MODES)
def test_adaptation_reads_the_learned_statistics(mode):
    """Adapting uses the running statistics (of each step): changing them changes the adapted weights."""
    tasks = image_tasks(n=2)
    learner = MAML(conv_bn(), inner_lr=0.3, inner_steps=2, batch_norm=mode)
    sx, sy = tasks[0][:2]
    first = [p.numpy().copy() for p in learner.adapt_to_task(sx, sy, compile=False).parameters()]
    stats = learner.plan(learner.model, 0, False)[0]
    with nx.no_grad():
        for mean, _ in stats.values():
            mean.add_(0.5)
    moved = [p.numpy() for p in learner.adapt_to_task(sx, sy, compile=False).parameters()]
    assert not np.allclose(first[0], moved[0])


def test_modes_are_checked():
    with pytest.raises(ValueError, match="batch_norm must be one of"):
        MAML(conv_bn(), batch_norm="per_task")
    with pytest.raises(ValueError, match="no BatchNorm layer with running statistics"):
        MAML(nx.nn.Sequential(nx.nn.Linear(2, 2)), batch_norm="inductive")
    model = conv_bn()
    model[1].momentum = None
    with pytest.raises(ValueError, match="momentum=None"):
        MAML(model, batch_norm="per_step")
    with pytest.raises(ValueError, match="checkpoint_inner_loop"):
        MAML(conv_bn(), batch_norm="per_step", checkpoint_inner_loop=True)
    assert MAML(conv_bn(), batch_norm="inductive").hyperparameters()["batch_norm"] == "inductive"
    assert "batch_norm" not in MAML(conv_bn()).hyperparameters()
