"""Meta-SGD: the learned per-element rates against a hand-written step, and the meta-gradient (of the
initialisation and of the rates) against finite differences."""

import numpy as np
import pytest

import neurenix as nx
from meta_helpers import assert_close_lists, finite_difference, meta_grad, mlp, sine_tasks
from neurenix.meta import MetaSGD
from neurenix.nn import functional as F


def random_rates(learner, seed=0):
    g = np.random.default_rng(seed)
    with nx.no_grad():
        for n in learner.inner_params:
            r = learner.inner_lrs[n]
            r.copy_(nx.tensor(g.uniform(0.01, 0.3, size=r.shape), dtype=r.dtype))


def test_rates_have_the_parameters_shapes_and_start_at_inner_lr():
    msgd = MetaSGD(mlp(), inner_lr=0.05)
    assert msgd.inner_steps == 1
    for name, p in msgd.model.named_parameters():
        r = msgd.inner_lrs[name]
        assert r.shape == p.shape and r.requires_grad and np.all(r.numpy() == 0.05)
    assert len(list(msgd.parameters())) == 2 * len(list(msgd.model.parameters()))
    with pytest.raises(TypeError, match="per_step_lr"):
        MetaSGD(mlp(), per_step_lr=True)


@pytest.mark.parametrize("steps", [1, 2])
@pytest.mark.parametrize("checkpointed", [False, True])
def test_meta_gradient_against_finite_differences(steps, checkpointed):
    msgd = MetaSGD(mlp(sizes=(1, 4, 1)), inner_steps=steps, checkpoint_inner_loop=checkpointed)
    random_rates(msgd)
    tasks = sine_tasks(n=2, rows=4)
    numeric = finite_difference(lambda: msgd.meta_loss(tasks).item(), list(msgd.parameters()))
    assert_close_lists(meta_grad(msgd, tasks), numeric)


def test_first_order_still_trains_the_rates():
    msgd = MetaSGD(mlp(), first_order=True)
    meta_grad(msgd, sine_tasks(2))
    assert all(np.abs(msgd.inner_lrs[n].grad.numpy()).max() > 0 for n in msgd.inner_params)


def test_adapt_to_task_is_the_elementwise_step():
    msgd = MetaSGD(mlp(), inner_steps=1)
    random_rates(msgd, seed=1)
    sx, sy, qx, _ = sine_tasks(1)[0]
    m = msgd.clone_model()
    gs = nx.autograd.grad(F.mse_loss(m(sx), sy), list(m.parameters()))
    with nx.no_grad():
        for (n, p), g in zip(m.named_parameters(), gs):
            p.sub_(msgd.inner_lrs[n] * g)
    np.testing.assert_allclose(msgd.adapt_to_task(sx, sy)(qx).numpy(), m(qx).numpy(), rtol=1e-12)
