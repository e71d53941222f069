"""MAML's differentiable inner optimizers: each update against a NumPy reference of torch.optim's rule, the
second-order meta-gradient through it against finite differences (plain and checkpointed), batched equal to
looped, adaptation, and no NaN where a gradient is exactly zero (Adam's square root at 0)."""

import warnings

import numpy as np
import pytest

import neurenix as nx
from meta_helpers import assert_close_lists, finite_difference, meta_grad, mlp, sine_tasks
from neurenix import nn
from neurenix.meta import MAML, inner_optimizers
from neurenix.meta.inner_optimizers import SGD, Adam, Momentum, RMSprop, safe_sqrt

NAMES = ["sgd", "momentum", "adam", "rmsprop"]


def numpy_steps(name, w, grads, lr):
    """torch.optim's update rules with their defaults, in NumPy: ``w`` after one step per gradient."""
    m, v, buf = np.zeros_like(w), np.zeros_like(w), None
    for t, g in enumerate(grads, start=1):
        if name == "sgd":
            w = w - lr * g
        elif name == "momentum":
            buf = g if buf is None else 0.9 * buf + g
            w = w - lr * buf
        elif name == "adam":
            m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
            w = w - lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        else:
            v = 0.99 * v + 0.01 * g * g
            w = w - lr * g / (np.sqrt(v) + 1e-8)
    return w


@pytest.mark.parametrize("name", NAMES)
def test_updates_follow_torch_optim(name):
    rng = np.random.default_rng(0)
    w0, grads = rng.normal(size=(2, 3)), [rng.normal(size=(2, 3)) for _ in range(3)]
    opt = inner_optimizers.make(name)
    ws = [nx.tensor(w0)]
    state = opt.init(ws)
    for k, g in enumerate(grads):
        ws, state = opt.step(k, ws, [nx.tensor(g)], [0.1], state)
    np.testing.assert_allclose(ws[0].numpy(), numpy_steps(name, w0, grads, 0.1), rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("checkpointed", [False, True])
def test_second_order_meta_gradient_against_finite_differences(name, checkpointed):
    maml = MAML(mlp(sizes=(1, 4, 1)), inner_lr=0.05, inner_steps=2, inner_optimizer=name,
                checkpoint_inner_loop=checkpointed)
    tasks = sine_tasks(n=2, rows=4)
    numeric = finite_difference(lambda: maml.meta_loss(tasks).item(), list(maml.parameters()))
    assert_close_lists(meta_grad(maml, tasks), numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", NAMES[1:])
def test_batched_tasks_keep_their_own_state(name):
    maml = MAML(mlp(), inner_lr=0.05, inner_steps=3, inner_optimizer=name)
    tasks = sine_tasks(3)
    assert_close_lists(meta_grad(maml, tasks), meta_grad(maml, tasks, batch_tasks=False), rtol=1e-10)


def dead_unit_model():
    """A ReLU unit that never fires: its weights get gradients of exactly 0 in every inner step."""
    nx.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 3), nn.ReLU(), nn.Linear(3, 1)).double()
    with nx.no_grad():
        model[0].weight[0] = 0.0
        model[0].bias[0] = -1.0
    return model


@pytest.mark.parametrize("name", ["adam", "rmsprop"])
def test_no_nan_where_a_gradient_is_exactly_zero(name, monkeypatch):
    tasks = sine_tasks(2)
    maml = MAML(dead_unit_model(), inner_lr=0.05, inner_steps=2, inner_optimizer=name)
    grads = meta_grad(maml, tasks)
    assert all(np.isfinite(g).all() for g in grads)
    numeric = finite_difference(lambda: maml.meta_loss(tasks).item(), list(maml.parameters()))
    live = [slice(1, 3)] * 2  # the dead unit's own entries: the loss is not differentiable there (|g| at 0)
    for g, fd, rows in zip(grads[:2], numeric[:2], live):
        np.testing.assert_allclose(g[rows], fd[rows], rtol=1e-5, atol=1e-7)
    assert_close_lists(grads[2:], numeric[2:], rtol=1e-5, atol=1e-7)
    monkeypatch.setattr(inner_optimizers, "safe_sqrt", lambda x: x.sqrt())  # the naive rule: inf * 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's note on the 0/0 this makes
        assert not all(np.isfinite(g).all() for g in meta_grad(maml, tasks))


def test_safe_sqrt_to_the_third_order():
    x = nx.tensor([0.0, 4.0], dtype=nx.float64, requires_grad=True)
    y = safe_sqrt(x)
    (g1,) = nx.autograd.grad(y.sum(), [x], create_graph=True)
    (g2,) = nx.autograd.grad(g1.sum(), [x], create_graph=True)
    (g3,) = nx.autograd.grad(g2.sum(), [x])
    np.testing.assert_allclose(y.detach().numpy(), [0, 2])
    np.testing.assert_allclose(g1.detach().numpy(), [0, 0.25])  # 1/(2 sqrt x)
    np.testing.assert_allclose(g2.detach().numpy(), [0, -1 / 32])  # -1/(4 x^1.5)
    np.testing.assert_allclose(g3.numpy(), [0, 3 / 256])  # 3/(8 x^2.5)


@pytest.mark.parametrize("name", NAMES[1:])
def test_adapt_to_task_takes_the_optimizers_steps(name):
    """At a rate where every step lowers the support loss, adaptation is the optimizer's plain steps."""
    lr = 0.001
    maml = MAML(mlp(), inner_lr=lr, inner_steps=3, inner_optimizer=name)
    sx, sy, qx, _ = sine_tasks(1)[0]
    m = maml.clone_model()
    opt, ws = maml.inner_optimizer, [p.detach() for p in m.parameters()]
    names = [n for n, _ in m.named_parameters()]
    state, losses = opt.init(ws), []
    for k in range(4):
        leaves = [w.detach().requires_grad_() for w in ws]
        loss = nn.functional.mse_loss(nx.func.functional_call(m, dict(zip(names, leaves)), sx), sy)
        losses.append(loss.item())
        if k < 3:
            ws, state = opt.step(k, leaves, list(nx.autograd.grad(loss, leaves)), [lr] * len(ws), state)
            ws = [w.detach() for w in ws]
    assert losses == sorted(losses, reverse=True)  # (each step lowered it: none would be refused)
    with nx.no_grad():
        for p, w in zip(m.parameters(), ws):
            p.copy_(w)
    np.testing.assert_allclose(maml.adapt_to_task(sx, sy)(qx).numpy(), m(qx).numpy(), rtol=1e-10)


@pytest.mark.parametrize("name", NAMES[1:])
def test_adaptation_never_raises_the_support_loss(name):
    """At a rate where plain steps overshoot, adaptation refuses them: 30 steps end no worse than they start."""
    maml = MAML(mlp(), inner_lr=0.5, inner_steps=3, inner_optimizer=name)
    sx, sy = sine_tasks(1)[0][:2]
    start = nn.functional.mse_loss(maml.model(sx), sy).item()
    end = nn.functional.mse_loss(maml.adapt_to_task(sx, sy, steps=30)(sx), sy).item()
    assert np.isfinite(end) and end <= start


def test_settings_are_checked_recorded_and_rebuilt():
    maml = MAML(mlp(), inner_optimizer=Adam(betas=(0.5, 0.9), eps=1e-6))
    config = maml.hyperparameters()["inner_optimizer"]
    assert config == {"name": "adam", "betas": [0.5, 0.9], "eps": 1e-6}
    assert repr(inner_optimizers.make(config)) == repr(maml.inner_optimizer)
    assert "inner_optimizer" not in MAML(mlp()).hyperparameters()  # checkpoints of plain MAML stay as they were
    assert type(MAML(mlp()).inner_optimizer) is SGD
    assert isinstance(inner_optimizers.make("momentum"), Momentum)
    assert isinstance(inner_optimizers.make("rmsprop"), RMSprop)
    with pytest.raises(ValueError, match="inner_optimizer must be one of"):
        MAML(mlp(), inner_optimizer="lbfgs")
    with pytest.raises(ValueError, match=r"betas\[1\] must be a number in \[0, 1\)"):
        Adam(betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="momentum must be"):
        Momentum(-0.1)
    with pytest.raises(ValueError, match="clone"):
        MAML(mlp(), inner_optimizer="adam").clone()
