"""The shared outer loop (meta_learn) and base-class behaviour, exercised through MAML and ProtoNets."""

import numpy as np
import pytest

import neurenix as nx
from meta_helpers import assert_unchanged, class_tasks, meta_grad, mlp, sine_tasks, snapshot
from neurenix import nn
from neurenix.meta import (
    ANIL,
    MAML,
    R2D2,
    MetaLearningModel,
    MetaSGD,
    PrototypicalNetworks,
    RelationNetworks,
    Reptile,
    iMAML,
)
from neurenix.nn import functional as F
from neurenix.optim import SGD, Adam


class CountingSGD(SGD):
    def __init__(self, params, lr):
        super().__init__(params, lr=lr)
        self.steps = 0

    def step(self):
        self.steps += 1
        return super().step()


def test_history_partial_batches_and_untouched_tasks():
    tasks = class_tasks(7)
    snap = snapshot(tasks)
    maml = MAML(mlp(sizes=(5, 8, 3)), inner_lr=0.1, inner_steps=1)
    opt = CountingSGD(maml.parameters(), lr=0.1)
    history = maml.meta_learn(tasks, opt, epochs=2, tasks_per_batch=3)
    assert opt.steps == 2 * 3  # batches of 3, 3 and 1 per epoch
    assert set(history) == {"loss", "accuracy"} and len(history["loss"]) == len(history["accuracy"]) == 2
    assert all(0 <= a <= 1 for a in history["accuracy"])
    assert_unchanged(tasks, snap)
    assert set(MAML(mlp(), inner_steps=1).meta_learn(sine_tasks(3), epochs=1)) == {"loss"}


def test_history_loss_is_the_mean_query_loss_of_the_epoch():
    tasks = sine_tasks(5)
    maml = MAML(mlp(), inner_steps=1)
    expected = maml.meta_loss(tasks).item() / len(tasks)
    history = maml.meta_learn(tasks, SGD(maml.parameters(), lr=0.0), epochs=1, tasks_per_batch=2)
    assert history["loss"][0] == pytest.approx(expected, rel=1e-12)


def test_shuffling_follows_manual_seed():
    def run():
        nx.manual_seed(7)
        maml = MAML(mlp(), inner_steps=1)
        return maml.meta_learn(sine_tasks(6), epochs=3, tasks_per_batch=4)["loss"]
    assert run() == run()


def test_default_optimizer_is_adam_at_meta_lr_and_kept():
    maml = MAML(mlp(), meta_lr=0.003, inner_steps=1)
    opt = maml.default_optimizer()
    assert isinstance(opt, Adam) and opt.param_groups[0]["lr"] == 0.003 and maml.default_optimizer() is opt
    maml.meta_learn(sine_tasks(2), epochs=1)
    assert opt.state and maml.default_optimizer() is opt


def test_tasks_of_several_shapes_in_one_batch():
    tasks = [*sine_tasks(2, rows=4), *sine_tasks(3, rows=6)]
    maml = MAML(mlp(), inner_lr=0.05, inner_steps=2)

    for a, b in zip(meta_grad(maml, tasks), meta_grad(maml, tasks, batch_tasks=False)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_conv_batchnorm_second_order_batched_equals_looped():
    nx.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(3 * 2 * 2, 3)).double()
    tasks = [(sx.reshape(-1, 1, 4, 4), sy, qx.reshape(-1, 1, 4, 4), qy) for sx, sy, qx, qy in class_tasks(3, dim=16)]
    maml = MAML(net, inner_lr=0.1, inner_steps=2)

    for a, b in zip(meta_grad(maml, tasks), meta_grad(maml, tasks, batch_tasks=False)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_explicit_loss_fn_wins():
    tasks = sine_tasks(3)
    maml = MAML(mlp(), inner_steps=0)
    expected = sum(F.l1_loss(maml(qx), qy).item() for _, _, qx, qy in tasks)
    assert maml.meta_loss(tasks, loss_fn=F.l1_loss).item() == pytest.approx(expected, rel=1e-12)


def test_a_nan_loss_stops_training_naming_epoch_and_batch():
    tasks = sine_tasks(3)
    sx, sy, qx, qy = tasks[2]
    tasks[2] = (sx, sy, qx, qy * float("nan"))
    maml = MAML(mlp(), inner_steps=1)
    with pytest.raises(FloatingPointError, match=r"loss became nan in epoch 0, batch 1 \(tasks \[2\]\)"):
        maml.meta_learn(tasks, epochs=1, tasks_per_batch=2, shuffle=False)


def test_bad_arguments_are_named():
    maml = MAML(mlp(sizes=(5, 8, 2)), inner_steps=1)
    tasks = class_tasks(2)  # 3 classes, but the model scores 2
    with pytest.raises(nx.ShapeError, match=r"tasks \[0, 1\]: labels name 3 classes but the model outputs shape "
                                            r"\(6, 2\)"):
        maml.meta_learn(tasks, epochs=1, shuffle=False)
    with pytest.raises(ValueError, match="tasks_per_batch must be an int >= 1, got 0"):
        maml.meta_learn(tasks, tasks_per_batch=0)
    with pytest.raises(ValueError, match="epochs must be an int >= 0"):
        maml.meta_learn(tasks, epochs=-1)
    with pytest.raises(nx.ShapeError, match=r"tasks \[0\]: predictions of shape \(10, 1\) per task do not match "
                                            r"targets of shape \(10,\)"):
        MAML(mlp(), inner_steps=1).meta_loss([(sx, sy[:, 0], qx, qy[:, 0]) for sx, sy, qx, qy in sine_tasks(1)])


def test_base_class_contract():
    model = mlp()
    base = MetaLearningModel(model)
    assert (base.inner_lr, base.meta_lr, base.first_order) == (0.01, 0.001, False)
    x = nx.randn(3, 1, dtype=nx.float64)
    np.testing.assert_array_equal(base(x).numpy(), model(x).numpy())
    clone = base.clone_model()
    assert clone is not model and all(a is not b for a, b in zip(clone.parameters(), model.parameters()))
    np.testing.assert_array_equal(clone(x).numpy(), model(x).numpy())
    assert [n for n, _ in base.named_parameters()] == [f"model.{n}" for n, _ in model.named_parameters()]
    with pytest.raises(NotImplementedError, match="must implement task_objective"):
        base.meta_learn(sine_tasks(1), epochs=1)


def test_metric_learner_parameters_are_the_embedding_models():
    emb = mlp(sizes=(5, 4))
    net = PrototypicalNetworks(emb)
    assert list(net.parameters()) == list(emb.parameters()) and net.embedding_model is emb


def test_adapt_to_task_leaves_the_meta_model_alone():
    nx.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3)).double()
    maml = MAML(net, inner_lr=0.1, inner_steps=3)
    before = {n: t.numpy().copy() for n, t in [*net.named_parameters(), *net.named_buffers()]}
    sx, sy, _, _ = class_tasks(1)[0]
    adapted = maml.adapt_to_task(sx, sy)
    for n, t in [*net.named_parameters(), *net.named_buffers()]:
        np.testing.assert_array_equal(t.numpy(), before[n], err_msg=n)
    assert not np.allclose(adapted[1].running_mean.numpy(), before["1.running_mean"])


# -- a failing step changes nothing ------------------------------------------------------------------------
def bn_embedding(seed=0):
    nx.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 4)).double()


LEARNERS = {
    "MAML": (lambda: MAML(mlp(), inner_lr=0.1, inner_steps=2), sine_tasks),
    "first-order MAML": (lambda: MAML(mlp(), inner_lr=0.1, inner_steps=1, first_order=True), sine_tasks),
    "MetaSGD": (lambda: MetaSGD(mlp()), sine_tasks),
    "ANIL": (lambda: ANIL(mlp(), inner_steps=1), sine_tasks),
    "iMAML": (lambda: iMAML(mlp(), inner_steps=2, cg_steps=2), sine_tasks),
    "Reptile": (lambda: Reptile(mlp(), inner_steps=2, meta_lr=0.5), sine_tasks),
    "ProtoNets+BatchNorm": (lambda: PrototypicalNetworks(bn_embedding()), class_tasks),
    "Relation": (lambda: RelationNetworks(bn_embedding(), mlp(sizes=(8, 4, 1))), class_tasks),
    "R2D2+BatchNorm": (lambda: R2D2(bn_embedding()), class_tasks),
}


def state(learner):
    """Everything a step may change: parameters, buffers, the optimizer's state and hyper-parameters."""
    sd = learner.default_optimizer().state_dict()
    arrays = [t.numpy().copy() for t in learner.state_dict().values()]
    arrays += [v.numpy().copy() for s in sd["state"].values() for v in s.values() if isinstance(v, nx.Tensor)]
    scalars = [(i, k, v) for i, s in sd["state"].items() for k, v in s.items() if not isinstance(v, nx.Tensor)]
    return arrays, scalars, sd["param_groups"]


def assert_same_state(a, b):
    assert len(a[0]) == len(b[0]) and all(np.array_equal(x, y) for x, y in zip(a[0], b[0]))
    assert a[1:] == b[1:]


@pytest.mark.parametrize("name", LEARNERS)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's own notes on the NaN the test feeds in
def test_a_failing_step_changes_nothing(name):
    """Batch 0 trains, batch 1 holds a task with NaN inputs: the learner ends exactly as after batch 0."""
    make, tasks = LEARNERS[name]
    good = tasks(4)
    sx, sy, qx, qy = good[3]
    bad = [*good[:3], (sx, sy, qx * float("nan"), qy)]
    expected, learner = make(), make()
    expected.meta_learn(good[:2], epochs=1, tasks_per_batch=2, shuffle=False)
    with pytest.raises(FloatingPointError, match=r"in epoch 0, batch 1 \(tasks \[2, 3\]\); task 3's query_x holds "
                                                 r"NaN or infinite values; the step was not taken"):
        learner.meta_learn(bad, epochs=1, tasks_per_batch=2, shuffle=False)
    assert_same_state(state(learner), state(expected))
    learner.meta_learn(good, epochs=1)  # and training goes on from there


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_non_finite_gradient_under_a_finite_loss_is_caught_and_named():
    def loss_fn(pred, y):  # sqrt(0) = 0, but its derivative is infinite: the loss is finite, its gradient NaN
        return F.mse_loss(pred, y) + (pred * 0).sqrt().sum()

    maml = MAML(mlp(), inner_lr=0.1, inner_steps=0)
    maml.meta_learn(sine_tasks(2), epochs=1)
    before = state(maml)
    with pytest.raises(FloatingPointError, match=r"the meta-gradient of model.0.weight became non-finite \(loss "):
        maml.meta_learn(sine_tasks(2), epochs=1, loss_fn=loss_fn)
    assert_same_state(state(maml), before)


# -- arguments --------------------------------------------------------------------------------------------
def test_meta_optimizer_must_be_an_optimizer_of_this_learners_parameters():
    maml = MAML(mlp(), inner_steps=1)
    with pytest.raises(TypeError, match="meta_optimizer must be a neurenix.optim.Optimizer or None, got 'adam'"):
        maml.meta_learn(sine_tasks(2), "adam")
    with pytest.raises(ValueError, match="meta_optimizer: 6 of its parameters are not this MAML's"):
        maml.meta_learn(sine_tasks(2), Adam(mlp().parameters()))
    maml.meta_learn(sine_tasks(2), SGD(list(maml.parameters())[:2], lr=0.1), epochs=1)  # a subset is fine


@pytest.mark.parametrize("loss_fn, error, match", [
    (lambda p, y: (p - y) ** 2, nx.ShapeError, r"one floating-point number per task, got a neurenix.float64 tensor of "
                                               r"shape \(10, 1\) for task"),
    (lambda p, y: 1.0, TypeError, "loss_fn must return a scalar neurenix Tensor, got float"),
    (lambda p, y: None, TypeError, "got NoneType"),
    ("mse", TypeError, "loss_fn must be a function or None, got 'mse'"),
])
def test_loss_fn_must_return_one_number_per_task(loss_fn, error, match):
    with pytest.raises(error, match=match):
        MAML(mlp(), inner_steps=1).meta_learn(sine_tasks(2), epochs=1, loss_fn=loss_fn)
    with pytest.raises(error, match=match):
        MAML(mlp(), inner_steps=1).meta_loss(sine_tasks(2), loss_fn=loss_fn)
    assert MAML(mlp(), inner_steps=1).meta_learn(sine_tasks(2), epochs=1, loss_fn=lambda p, y: F.l1_loss(p, y)[None])


@pytest.mark.parametrize("tasks, error, match", [
    (None, TypeError, "tasks must be a list of .* tuples, got NoneType"),
    (lambda epoch: None, TypeError, "tasks must be a list of .* tuples, got NoneType"),
    (lambda epoch: [], ValueError, "no tasks given"),
    ([(nx.randn(5, 1), nx.randn(5, 1), nx.randn(0, 1), nx.randn(0, 1))], nx.ShapeError,
     "task 0: the query set is empty"),
])
def test_bad_task_lists_are_named(tasks, error, match):
    with pytest.raises(error, match=match):
        MAML(mlp().float(), inner_steps=1).meta_learn(tasks, epochs=1)


def test_meta_is_an_attribute_after_import_neurenix():
    """Seed 001's snippet: ``import neurenix`` then ``neurenix.meta.generate_regression_tasks``; importing
    neurenix alone does not import meta."""
    import subprocess
    import sys
    code = ("import sys, neurenix; assert 'neurenix.meta' not in sys.modules; "
            "tasks = neurenix.meta.generate_regression_tasks(2, 10); assert len(tasks) == 2")
    subprocess.run([sys.executable, "-c", code], check=True)
