"""R2-D2: a closed-form ridge-regression head on the support embeddings, W = X^T (X X^T + lam I)^-1 Y, and query
logits alpha * X_q W + beta, differentiated through the solver."""

import time

import numpy as np
import pytest

import neurenix as nx
from meta_helpers import class_tasks, finite_difference, image_tasks, meta_grad, mlp
from neurenix import nn
from neurenix.meta import R2D2, generate_classification_tasks
from neurenix.nn import functional as F
from neurenix.testing import gradcheck, gradgradcheck


def _reference_logits(net, sx, sy, qx):
    """The primal form of ridge regression, (X^T X + lam I)^-1 X^T Y, equal to the learner's Woodbury form."""
    xs, xq = net.embedding_model(sx).numpy(), net.embedding_model(qx).numpy()
    y = sy.numpy() if sy.ndim == 2 else np.eye(int(sy.numpy().max()) + 1)[sy.numpy()]
    lam, alpha, beta = net.lam.item(), net.alpha.item(), net.beta.item()
    w = np.linalg.solve(xs.T @ xs + lam * np.eye(xs.shape[1]), xs.T @ y)
    return alpha * xq @ w + beta, w


@pytest.mark.parametrize("int_labels", [False, True], ids=["one-hot", "index"])
def test_head_is_the_closed_form_ridge_regression(int_labels):
    net = R2D2(mlp(sizes=(5, 7, 4)), lam=0.3, alpha=2.0, beta=-0.5)
    sx, sy, qx, _ = class_tasks(1, int_labels=int_labels)[0]
    expected, w = _reference_logits(net, sx, sy, qx)
    np.testing.assert_allclose(net(qx, sx, sy).numpy(), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(net.adapt_to_task(sx, sy)(qx).numpy(), expected, rtol=1e-10, atol=1e-12)
    support = net.embed(sx.unsqueeze(0))
    one_hot = F.one_hot(sy if int_labels else sy.argmax(dim=1), 3).double().unsqueeze(0)
    np.testing.assert_allclose(net.ridge_weights(support, one_hot)[0].numpy(), w, rtol=1e-10, atol=1e-12)


def test_meta_gradient_matches_finite_differences():
    """Every parameter, the head's alpha, beta and log lambda included, through the solve's vjp (float64)."""
    net = R2D2(mlp(sizes=(5, 4, 3)), lam=0.5)
    tasks = class_tasks(2)
    analytic = meta_grad(net, tasks)
    params = list(net.parameters())
    assert len(params) == 3 + 4  # alpha, beta, log_lam; two Linear layers
    numeric = finite_difference(lambda: net.meta_loss(tasks).item(), params)
    for a, n in zip(analytic, numeric):
        np.testing.assert_allclose(a, n, rtol=1e-5, atol=1e-7)


def test_second_order_through_the_head():
    """Gradients of gradients of the logits in the embeddings (what MAML-style meta-gradients through R2D2 use)."""
    net = R2D2(nn.Identity(), lam=0.7, alpha=1.5)
    rng = np.random.default_rng(0)
    one_hot = nx.tensor(np.eye(3)[[0, 1, 2, 0, 1]][None], dtype=nx.float64)
    support = nx.tensor(rng.standard_normal((1, 5, 4)), dtype=nx.float64, requires_grad=True)
    query = nx.tensor(rng.standard_normal((1, 2, 4)), dtype=nx.float64, requires_grad=True)

    def fn(s, q):
        return net.scores(q, s, one_hot)

    assert gradcheck(fn, [support, query]) and gradgradcheck(fn, [support, query])


def test_batched_meta_gradient_is_the_sum_of_per_task_ones():
    net = R2D2(mlp(sizes=(5, 7, 4)))
    tasks = class_tasks(4)
    per_task = [meta_grad(net, [t]) for t in tasks]
    looped = meta_grad(net, tasks, batch_tasks=False)
    for i, b in enumerate(meta_grad(net, tasks)):
        np.testing.assert_allclose(b, sum(g[i] for g in per_task), rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(b, looped[i], rtol=1e-10, atol=1e-12)


def test_meta_learning_improves_few_shot_accuracy_on_new_tasks():
    """5-way 3-shot Gaussian tasks sharing a hidden subspace: held-out accuracy goes from ~0.67 to ~0.93 in 3 epochs
    over 400 tasks (with 48 tasks the embedding memorises them: training accuracy 1.0, held-out falling)."""
    nx.manual_seed(0)
    start = time.perf_counter()
    tasks = generate_classification_tasks(420, 5, 6, 20, seed=3)
    train, held_out = tasks[:400], tasks[400:]
    net = R2D2(mlp(sizes=(20, 32, 16)).float(), meta_lr=0.01)

    def accuracy():
        right = [(net.adapt_to_task(sx, sy)(qx).argmax(dim=1) == qy.argmax(dim=1)).float().mean().item()
                 for sx, sy, qx, qy in held_out]
        return float(np.mean(right))

    before = accuracy()
    history = net.meta_learn(train, epochs=3, tasks_per_batch=16)
    after = accuracy()
    assert history["loss"][-1] < history["loss"][0]
    assert after > before + 0.15 and after > 0.88, (before, after)
    assert time.perf_counter() - start < 5


def test_feature_maps_are_flattened():
    nx.manual_seed(0)
    embedding = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh()).double()  # (rows, 2, 3, 3) feature maps
    net = R2D2(embedding)
    sx, sy, qx, _ = image_tasks(1)[0]
    expected, _ = _reference_logits(R2D2(nn.Sequential(embedding, nn.Flatten())), sx, sy, qx)
    np.testing.assert_allclose(net(qx, sx, sy).numpy(), expected, rtol=1e-10, atol=1e-12)


def test_lambda_fixed_or_learned_and_the_hyperparameters():
    fixed = R2D2(mlp(sizes=(5, 7, 4)), lam=2.0, learn_lambda=False)
    assert "log_lam" not in dict(fixed.named_parameters()) and "log_lam" in fixed.state_dict()
    fixed.meta_learn(class_tasks(4), epochs=2, tasks_per_batch=2)
    assert fixed.lam.item() == pytest.approx(2.0, rel=1e-12)
    learned = R2D2(mlp(sizes=(5, 7, 4)), meta_lr=0.05)
    learned.meta_learn(class_tasks(4), epochs=2, tasks_per_batch=2)
    assert learned.lam.item() != pytest.approx(1.0, rel=1e-6)
    assert fixed.hyperparameters() == {"learner": "R2D2", "inner_lr": 0.0, "meta_lr": 0.001, "first_order": False,
                                       "lam": 2.0, "learn_lambda": False, "alpha": 1.0, "beta": 0.0}
    assert learned.alpha.dtype == nx.float64  # the head's scalars take the embedding's dtype


def test_bad_input_is_named():
    net = R2D2(mlp(sizes=(5, 7, 4)))
    sx, sy, qx, qy = class_tasks(1, int_labels=True)[0]
    holey = sy.clone()
    holey[holey == 1] = 0  # no support example of class 1 left
    with pytest.raises(ValueError, match="R2D2: task 1 has no support examples of class 1"):
        net.meta_learn([(sx, sy, qx, qy), (sx, holey, qx, qy)], epochs=1)
    with pytest.raises(ValueError, match="R2D2: task 0 has targets of shape .* not class labels"):
        net.meta_learn([(sx, sx[:, :1], qx, qx[:, :1])], epochs=1)
    with pytest.raises(ValueError, match="both support_x and support_y"):
        net(qx, sx)
    with pytest.raises(nx.ShapeError, match=r"support embeddings \(1, 12, 4\) and one-hot labels \(1, 11, 3\)"):
        net.ridge_weights(nx.randn(1, 12, 4), nx.randn(1, 11, 3))


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    (dict(lam=0.0), ValueError, "lam must be a finite number > 0, got 0.0"),
    (dict(lam="1"), TypeError, "lam must be a finite number, got '1'"),
    (dict(alpha=float("nan")), ValueError, "alpha must be a finite number, got nan"),
    (dict(learn_lambda="yes"), TypeError, "learn_lambda"),
    (dict(meta_lr=-1.0), ValueError, "meta_lr must be a finite number >= 0"),
], ids=["lam-zero", "lam-str", "alpha-nan", "flag", "meta-lr"])
def test_bad_hyperparameters_are_named(kwargs, error, message):
    with pytest.raises(error, match=message):
        R2D2(mlp(sizes=(5, 7, 4)), **kwargs)
