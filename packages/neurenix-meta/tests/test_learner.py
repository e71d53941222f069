"""learn2learn's functional style: ``maml.clone()`` / ``learner.adapt(loss)`` give the same meta-gradient
as the batched ``meta_loss`` (float64, first and second order, MAML, MAML++'s learned rates, Meta-SGD, ANIL)
and agree with finite differences; learn2learn's argument names map onto the seed API's."""

import numpy as np
import pytest

import meta_helpers as h
import neurenix as nx
from meta_helpers import assert_close_lists, finite_difference, grads, mlp, sine_tasks
from neurenix import nn
from neurenix.meta import ANIL, MAML, ClonedLearner, MetaSGD, clone_module
from neurenix.nn import functional as F


def clone_path_loss(learner, tasks, steps, loss=F.mse_loss):
    """The meta-objective written as in learn2learn's examples: one clone per task, adapted by hand."""
    total = 0.0
    for sx, sy, qx, qy in tasks:
        clone = learner.clone()
        for _ in range(steps):
            clone.adapt(loss(clone(sx), sy))
        total = total + loss(clone(qx), qy)
    return total


def clone_path_grad(learner, tasks, steps, loss=F.mse_loss):
    learner.zero_grad()
    clone_path_loss(learner, tasks, steps, loss).backward()
    return grads(learner)


def batched_grad(learner, tasks):
    learner.zero_grad()
    learner.meta_loss(tasks).backward()
    return grads(learner)


def randomise(rates, seed=0):
    g = np.random.default_rng(seed)
    with nx.no_grad():
        for r in rates:
            r.copy_(nx.tensor(g.uniform(0.05, 0.3, size=r.shape), dtype=r.dtype))


LEARNERS = {
    "maml": lambda m, fo, steps: MAML(m, lr=0.2, first_order=fo, inner_steps=steps),
    "maml-lslr": lambda m, fo, steps: MAML(m, lr=0.2, first_order=fo, inner_steps=steps, per_step_lr=True),
    "metasgd": lambda m, fo, steps: MetaSGD(m, lr=0.2, first_order=fo, inner_steps=steps),
    "anil": lambda m, fo, steps: ANIL(m, lr=0.2, first_order=fo, inner_steps=steps),
}


def make(kind, first_order, steps, sizes=(1, 5, 5, 1)):
    learner = LEARNERS[kind](mlp(sizes=sizes), first_order, steps)
    if learner.inner_lrs is not None:
        randomise(learner.inner_lrs.parameters())
    return learner


@pytest.mark.parametrize("kind", list(LEARNERS))
@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("steps", [1, 2])
def test_clone_path_gives_the_batched_meta_gradient(kind, first_order, steps):
    learner, tasks = make(kind, first_order, steps), sine_tasks(n=3, rows=5)
    np.testing.assert_allclose(clone_path_loss(learner, tasks, steps).item(), learner.meta_loss(tasks).item(),
                               rtol=1e-12)
    assert_close_lists(clone_path_grad(learner, tasks, steps), batched_grad(learner, tasks), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", list(LEARNERS))
def test_second_order_clone_path_against_finite_differences(kind):
    learner, tasks = make(kind, False, 2, sizes=(1, 4, 1)), sine_tasks(n=2, rows=4)
    numeric = finite_difference(lambda: clone_path_loss(learner, tasks, 2).item(), list(learner.parameters()))
    assert_close_lists(clone_path_grad(learner, tasks, 2), numeric)


@pytest.mark.parametrize("first_order", [False, True])
def test_classification_with_batchnorm(first_order):
    """Conv + BatchNorm in train mode: the clone normalises with batch statistics, as meta_loss does."""
    learner, tasks = MAML(h.conv_bn(), lr=0.3, first_order=first_order, inner_steps=1), h.image_tasks(n=2)
    assert_close_lists(clone_path_grad(learner, tasks, 1, h.ce), batched_grad(learner, tasks), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("first_order", [False, True])
def test_anil_pattern_features_and_a_cloned_head(first_order):
    """learn2learn's ANIL: a features module outside, ``MAML(head)`` cloned per task; the features get
    their meta-gradient through the adapted heads, as in ANIL(Sequential(features, head))."""
    model = mlp(sizes=(5, 6, 3))
    features, head = model[:2], model[2]
    anil = ANIL(model, lr=0.4, first_order=first_order, inner_steps=2)
    tasks = h.class_tasks(n=3, int_labels=True)
    expected = batched_grad(anil, tasks)
    head_maml = MAML(head, lr=0.4, first_order=first_order)
    anil.zero_grad()
    total = 0.0
    for sx, sy, qx, qy in tasks:
        learner = head_maml.clone()
        for _ in range(2):
            learner.adapt(F.cross_entropy(learner(features(sx)), sy))
        total = total + F.cross_entropy(learner(features(qx)), qy)
    total.backward()
    assert_close_lists(grads(anil), expected, rtol=1e-10, atol=1e-12)


def test_clone_is_differentiable_and_leaves_the_learner_alone():
    maml = MAML(mlp(), lr=0.5)
    before = [p.numpy().copy() for p in maml.parameters()]
    learner = maml.clone()
    assert isinstance(learner, ClonedLearner) and learner.module is not maml.model
    for p, q in zip(learner.parameters(), maml.parameters()):
        assert p is not q and p.requires_grad and not p.is_leaf
        np.testing.assert_array_equal(p.numpy(), q.numpy())
    sx, sy, _, _ = sine_tasks(1)[0]
    learner.adapt(F.mse_loss(learner(sx), sy))
    assert learner.steps_taken == 1
    assert any(not np.array_equal(p.numpy(), b) for p, b in zip(learner.parameters(), before))
    assert_close_lists([p.numpy() for p in maml.parameters()], before, rtol=0, atol=0)
    copy = maml.clone_model()  # the seed API's detached copy is unchanged
    assert all(p.is_leaf and p.requires_grad for p in copy.parameters())


def test_adapt_is_the_sgd_step():
    maml = MAML(mlp(), lr=0.3)
    sx, sy, qx, _ = sine_tasks(1)[0]
    learner = maml.clone()
    loss = F.mse_loss(learner(sx), sy)
    gs = nx.autograd.grad(loss, list(learner.parameters()), create_graph=True)
    expected = [(p - 0.3 * g).detach().numpy() for p, g in zip(learner.parameters(), gs)]
    learner.adapt(loss)
    assert_close_lists([p.detach().numpy() for p in learner.parameters()], expected, rtol=1e-14, atol=0)
    np.testing.assert_allclose(learner(qx).numpy(), maml.adapt_to_task(sx, sy, steps=1)(qx).numpy(), rtol=1e-12)


def test_clone_of_a_clone_continues_from_its_weights():
    maml = MAML(mlp(), lr=0.2, inner_steps=2)
    tasks = sine_tasks(n=1)
    sx, sy, qx, qy = tasks[0]
    first = maml.clone()
    first.adapt(F.mse_loss(first(sx), sy))
    second = first.clone()
    assert second.steps_taken == 1
    second.adapt(F.mse_loss(second(sx), sy))
    maml.zero_grad()
    F.mse_loss(second(qx), qy).backward()
    assert_close_lists(grads(maml), batched_grad(maml, tasks), rtol=1e-10, atol=1e-12)


def test_first_order_override_per_call():
    maml = MAML(mlp(), lr=0.2, inner_steps=1, first_order=True)
    tasks = sine_tasks(n=2)
    maml.zero_grad()
    total = 0.0
    for sx, sy, qx, qy in tasks:
        learner = maml.clone(first_order=False)
        learner.adapt(F.mse_loss(learner(sx), sy))
        total = total + F.mse_loss(learner(qx), qy)
    total.backward()
    maml.first_order = False
    assert_close_lists(grads(maml), batched_grad(maml, tasks), rtol=1e-10, atol=1e-12)


class WithSpare(nn.Module):
    """A model with a parameter its forward pass never uses."""

    def __init__(self):
        super().__init__()
        self.body = mlp()
        self.spare = nn.Parameter(nx.zeros(3, dtype=nx.float64))

    def forward(self, x):
        return self.body(x)


def test_allow_unused():
    sx, sy, _, _ = sine_tasks(1)[0]
    learner = MAML(WithSpare(), lr=0.1).clone()
    with pytest.raises(ValueError, match=r"does not depend on parameters \['spare'\].*allow_unused=True"):
        learner.adapt(F.mse_loss(learner(sx), sy))
    learner.adapt(F.mse_loss(learner(sx), sy), allow_unused=True)
    assert learner.steps_taken == 1 and np.all(learner.spare.numpy() == 0)


def test_allow_nograd():
    sx, sy, _, _ = sine_tasks(1)[0]
    model = mlp()
    maml = MAML(model, lr=0.1)
    model[0].weight.requires_grad_(False)
    with pytest.raises(ValueError, match=r"\['0.weight'\] do not require grad.*allow_nograd=True"):
        learner = maml.clone()
        learner.adapt(F.mse_loss(learner(sx), sy))
    maml.allow_nograd = True
    learner = maml.clone()
    frozen = learner.module[0].weight
    learner.adapt(F.mse_loss(learner(sx), sy))
    assert learner.module[0].weight is frozen
    assert not np.array_equal(learner.module[0].bias.detach().numpy(), model[0].bias.numpy())


def test_adapt_checks_its_loss():
    learner = MAML(mlp(), lr=0.1).clone()
    sx, _, _, _ = sine_tasks(1)[0]
    with pytest.raises(TypeError, match="scalar"):
        learner.adapt(learner(sx))
    with pytest.raises(TypeError, match="first_order must be True or False"):
        learner.adapt(learner(sx).mean(), first_order="no")


def test_attributes_reach_the_module():
    learner = MAML(WithSpare(), lr=0.1).clone()
    assert learner.body is learner.module.body and learner.spare is learner.module.spare
    with pytest.raises(AttributeError):
        learner.no_such_attribute  # noqa: B018


def test_clone_module_ties_and_buffers():
    lin = nn.Linear(2, 2).double()
    model = nn.Sequential(lin, nn.BatchNorm1d(2), lin).double()
    copy = clone_module(model)
    assert copy[0] is copy[2] and copy[0] is not lin
    assert copy[1].running_mean is model[1].running_mean  # shared, as in learn2learn
    assert len(list(copy.parameters())) == len(list(model.parameters()))
    with pytest.raises(TypeError, match="Module"):
        clone_module(lin.weight)


class TiedLayers(nn.Module):
    """Two Linear layers sharing one weight: ``named_parameters()`` lists it once, as ``a.weight``."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(1, 1), nn.Linear(1, 1)
        self.b.weight = self.a.weight

    def forward(self, x):
        return self.b(nx.tanh(self.a(x)))


@pytest.mark.parametrize("first_order", [True, False])
def test_adapt_keeps_tied_weights_tied(first_order):
    nx.manual_seed(0)
    learner = MAML(TiedLayers().double(), lr=0.1, first_order=first_order).clone()
    sx, sy, _, _ = sine_tasks(1)[0]
    before = learner.module.a.weight
    learner.adapt(F.mse_loss(learner(sx), sy))
    assert learner.module.a.weight is learner.module.b.weight and learner.module.a.weight is not before
    assert [n for n, _ in learner.named_parameters()] == ["module.a.weight", "module.a.bias", "module.b.bias"]


# -- learn2learn's names -------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [MAML, MetaSGD, ANIL])
def test_lr_is_inner_lr(cls):
    assert cls(mlp(), lr=0.3).inner_lr == 0.3
    assert cls(mlp(), 0.3).inner_lr == 0.3  # learn2learn's positional lr is inner_lr's place too
    assert cls(mlp()).inner_lr == (0.05 if cls is ANIL else 0.01)  # (ANIL's head alone: see its docstring)
    learner = cls(mlp(), inner_lr=0.25)
    assert learner.lr == 0.25
    learner.lr = 0.5
    assert learner.inner_lr == 0.5
    with pytest.raises(ValueError, match="inner_lr"):
        learner.lr = -1.0


@pytest.mark.parametrize("cls", [MAML, MetaSGD, ANIL])
@pytest.mark.parametrize("given", [{"inner_lr": 0.1}, {"inner_lr": 0.01}])
def test_lr_and_inner_lr_together_are_refused(cls, given):
    with pytest.raises(TypeError, match=r"both lr=0.2 \(learn2learn's name\) and inner_lr"):
        cls(mlp(), lr=0.2, **given)
    with pytest.raises(TypeError, match="both lr"):
        cls(mlp(), given["inner_lr"], lr=0.2)


@pytest.mark.parametrize("nograd, unused, expected", [(False, None, False), (True, None, True), (True, False, False),
                                                      (False, True, True)])
def test_allow_unused_defaults_to_allow_nograd(nograd, unused, expected):
    maml = MAML(mlp(), lr=0.1, allow_nograd=nograd, allow_unused=unused)
    assert maml.allow_unused is expected and maml.allow_nograd is nograd
    assert maml.clone().allow_unused is expected and maml.clone(allow_unused=not expected).allow_unused is not expected
    assert maml.module is maml.model


def test_metasgd_lrs():
    model = mlp(sizes=(1, 3, 1))
    lrs = [nx.full(p.shape, 0.1 * (i + 1), dtype=nx.float64) for i, p in enumerate(model.parameters())]
    msgd = MetaSGD(model, lrs=lrs)
    for (name, _), r in zip(model.named_parameters(), lrs):
        np.testing.assert_array_equal(msgd.inner_lrs[name].numpy(), r.numpy())
    with pytest.raises(ValueError, match="lrs has 1 tensors"):
        MetaSGD(mlp(), lrs=lrs[:1])
    with pytest.raises(ValueError, match="lrs for '0.weight' has shape"):
        MetaSGD(mlp(sizes=(1, 3, 1)), lrs=[nx.ones(2)] + lrs[1:])


def test_meta_learn_calls_back_after_every_epoch():
    """callback(epochs done, history so far), after the epoch's validation; not a function: a TypeError."""
    seen = []
    learner = MAML(mlp(), inner_lr=0.01)
    tasks = sine_tasks(4)
    history = learner.meta_learn(tasks, epochs=3, tasks_per_batch=2, validation=tasks[:2], validate_every=2,
                                 callback=lambda done, hist: seen.append((done, len(hist["loss"]),
                                                                          len(hist.get("validation", [])))))
    assert seen == [(1, 1, 0), (2, 2, 1), (3, 3, 2)] and len(history["loss"]) == 3
    with pytest.raises(TypeError, match="callback must be a function or None"):
        learner.meta_learn(tasks, epochs=1, callback="print")
