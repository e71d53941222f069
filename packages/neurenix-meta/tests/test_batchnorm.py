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
