"""ANIL: only the head adapts (against a plain training loop), the meta-gradient reaches the body
(against finite differences), batched equals looped."""

import numpy as np
import pytest

import neurenix as nx
from meta_helpers import assert_close_lists, conv_bn, finite_difference, image_tasks, meta_grad, mlp, sine_tasks
from neurenix import nn
from neurenix.meta import ANIL
from neurenix.nn import functional as F


def test_head_defaults_to_the_last_child_with_parameters():
    assert ANIL(mlp()).inner_params == ("4.weight", "4.bias")
    assert ANIL(conv_bn(), head="1").inner_params == ("1.weight", "1.bias")
    with pytest.raises(TypeError, match="head="):
        ANIL(mlp(), inner_params=["0"])


@pytest.mark.parametrize("checkpointed", [False, True])
def test_meta_gradient_against_finite_differences(checkpointed):
    anil = ANIL(mlp(sizes=(1, 4, 4, 1)), inner_lr=0.2, inner_steps=2, checkpoint_inner_loop=checkpointed)
    tasks = sine_tasks(n=2, rows=4)
    analytic = meta_grad(anil, tasks)
    assert all(np.abs(g).max() > 0 for g in analytic)  # the body learns through the adapted head
    numeric = finite_difference(lambda: anil.meta_loss(tasks).item(), list(anil.parameters()))
    assert_close_lists(analytic, numeric)


def test_adapt_to_task_moves_only_the_head_as_plain_sgd_does():
    anil = ANIL(mlp(), inner_lr=0.1, inner_steps=3)
    sx, sy, qx, _ = sine_tasks(1)[0]
    adapted = anil.adapt_to_task(sx, sy)
    m = anil.clone_model()
    head = [m[4].weight, m[4].bias]
    for _ in range(3):
        gs = nx.autograd.grad(F.mse_loss(m(sx), sy), head)
        with nx.no_grad():
            for p, g in zip(head, gs):
                p.sub_(0.1 * g)
    np.testing.assert_allclose(adapted(qx).numpy(), m(qx).numpy(), rtol=1e-12)
    for (name, a), b in zip(adapted.named_parameters(), anil.model.parameters()):
        assert name.startswith("4.") or np.array_equal(a.numpy(), b.numpy())


def test_batched_equals_looped_with_batchnorm_in_the_body():
    anil = ANIL(conv_bn(), inner_lr=0.1, inner_steps=2)
    tasks = image_tasks(3)
    assert_close_lists(meta_grad(anil, tasks), meta_grad(anil, tasks, batch_tasks=False), rtol=1e-10, atol=1e-13)


class Counting(nn.Module):
    """Identity that counts its calls (how often the body runs)."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x


class Wrapped(nn.Module):
    """The same network, not a Sequential: ANIL runs the whole model at every inner step."""

    def __init__(self, seq):
        super().__init__()
        self.net = seq

    def forward(self, x):
        return self.net(x)


@pytest.mark.parametrize("options", [{}, {"checkpoint_inner_loop": True}, {"multi_step_weights": [0.3, 0.7]},
                                     {"first_order": True}], ids=["plain", "checkpointed", "multi-step", "first"])
def test_body_features_computed_once_give_the_same_meta_gradient(options):
    seq = conv_bn()
    seq = nn.Sequential(Counting(), *seq)  # children "0" (counter), ..., "5" the head
    cached = ANIL(seq, inner_lr=0.2, inner_steps=2, **options)
    whole = ANIL(Wrapped(seq), inner_lr=0.2, inner_steps=2, head="net.5", **options)
    assert cached.inner_params == ("5.weight", "5.bias") and whole.inner_params == ("net.5.weight", "net.5.bias")
    tasks = image_tasks(3)
    g_whole = meta_grad(whole, tasks)
    seq[0].calls = 0
    g_cached = meta_grad(cached, tasks)
    assert seq[0].calls == 2  # the body ran once on the support sets and once on the query sets
    assert_close_lists(g_cached, g_whole, rtol=1e-10, atol=1e-13)
