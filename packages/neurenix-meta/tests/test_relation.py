"""Relation Networks: P(y = c) is class c's share of the sigmoid relation scores g([f(x_q), f(x_i)])."""

import numpy as np
import pytest

import neurenix as nx
from meta_helpers import class_tasks, meta_grad, mlp
from neurenix import nn
from neurenix.meta import RelationNetworks


def _net():
    return RelationNetworks(mlp(sizes=(5, 7, 4), seed=0), mlp(sizes=(8, 6, 1), seed=1))


def test_log_probabilities_follow_the_relation_formula():
    net = _net()
    sx, sy, qx, _ = class_tasks(1)[0]
    es, eq = net.embedding_model(sx), net.embedding_model(qx)
    g = net.relation_model
    r = np.array([[1 / (1 + np.exp(-g(nx.cat([q, s]).unsqueeze(0)).item())) for s in es] for q in eq])
    one_hot = sy.numpy()
    expected = np.log((r @ one_hot) / r.sum(1, keepdims=True))
    np.testing.assert_allclose(net(qx, sx, sy).numpy(), expected, rtol=1e-10)
    np.testing.assert_allclose(np.exp(expected).sum(1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(net.adapt_to_task(sx, sy)(qx).numpy(), expected, rtol=1e-10)


def test_batched_meta_gradient_is_the_sum_of_per_task_ones():
    net = _net()
    tasks = class_tasks(3)

    per_task = [meta_grad(net, [t]) for t in tasks]
    for i, b in enumerate(meta_grad(net, tasks)):
        np.testing.assert_allclose(b, sum(g[i] for g in per_task), rtol=1e-6, atol=1e-12)


def test_convolutional_pairs_concatenate_channels():
    nx.manual_seed(0)
    f = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    g = nn.Sequential(nn.Conv2d(8, 2, 3), nn.Flatten(), nn.Linear(2, 1))
    net = RelationNetworks(f, g)
    sx, sy, qx, _ = class_tasks(1, dim=36)[0]
    sx, qx = sx.reshape(-1, 1, 6, 6).float(), qx.reshape(-1, 1, 6, 6).float()
    logp = net(qx, sx, sy.float())
    assert logp.shape == (qx.shape[0], 3)
    np.testing.assert_allclose(logp.exp().sum(1).numpy(), 1.0, rtol=1e-5)


def test_saturated_relation_scores_stay_finite():
    """Relation logits far below 0 underflow sigmoid to 0 in float32; log-probabilities and gradients must not."""
    net = RelationNetworks(nn.Linear(5, 4), nn.Linear(8, 1))
    with nx.no_grad():
        net.relation_model.bias.fill_(-200.0)
    sx, sy, qx, qy = (t.float() for t in class_tasks(1)[0])
    assert net.compute_relations(net.embed(qx.unsqueeze(0)), net.embed(sx.unsqueeze(0))).max().item() == 0.0
    logits = net(qx, sx, sy)
    np.testing.assert_allclose(logits.exp().sum(1).numpy(), 1.0, rtol=1e-5)
    loss = net.meta_loss([(sx, sy, qx, qy)])
    loss.backward()
    assert np.isfinite(loss.item()) and all(np.isfinite(p.grad.numpy()).all() for p in net.parameters())


@pytest.mark.parametrize("query, support", [((3, 4), (2, 4)), ((1, 3, 4), (1, 2, 5)), ((2, 3, 4), (1, 2, 4))],
                         ids=["no-task-axis", "features-differ", "tasks-differ"])
def test_embeddings_of_the_wrong_shapes_are_named(query, support):
    net = RelationNetworks(nn.Linear(5, 4), nn.Linear(8, 1))
    with pytest.raises(nx.ShapeError, match=r"query_embeddings .* and support_embeddings .* must be \(tasks, rows"):
        net.compute_relations(nx.randn(*query), nx.randn(*support))
