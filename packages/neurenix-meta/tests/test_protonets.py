"""Prototypical Networks: logits are negative squared distances to the class means of the embeddings."""

import numpy as np
import pytest

import neurenix as nx
from meta_helpers import class_tasks, meta_grad, mlp
from neurenix.meta import PrototypicalNetworks


def _reference_logits(net, sx, sy, qx, metric):
    es, eq = net.embedding_model(sx).numpy(), net.embedding_model(qx).numpy()
    labels = sy.numpy().argmax(1) if sy.ndim == 2 else sy.numpy()
    protos = np.stack([es[labels == c].mean(0) for c in range(labels.max() + 1)])
    if metric == "euclidean":
        return -((eq[:, None] - protos[None]) ** 2).sum(-1)
    unit = lambda a: a / np.linalg.norm(a, axis=-1, keepdims=True)  # noqa: E731
    return unit(eq) @ unit(protos).T - 1


@pytest.mark.parametrize("int_labels", [False, True], ids=["one-hot", "index"])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_logits_are_negative_distances_to_class_means(metric, int_labels):
    net = PrototypicalNetworks(mlp(sizes=(5, 7, 4)), distance_metric=metric)
    sx, sy, qx, _ = class_tasks(1, int_labels=int_labels)[0]
    expected = _reference_logits(net, sx, sy, qx, metric)
    np.testing.assert_allclose(net(qx, sx, sy).numpy(), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(net.adapt_to_task(sx, sy)(qx).numpy(), expected, rtol=1e-10, atol=1e-12)
    protos = net.compute_prototypes(sx, sy)
    np.testing.assert_allclose(-net.compute_distances(net(qx), protos).numpy(), expected, rtol=1e-10, atol=1e-12)
    assert net(qx).shape == (qx.shape[0], 4)  # without a support set: embeddings


def test_batched_meta_gradient_is_the_sum_of_per_task_ones():
    net = PrototypicalNetworks(mlp(sizes=(5, 7, 4)))
    tasks = class_tasks(4)

    per_task = [meta_grad(net, [t]) for t in tasks]
    for i, (b, lp) in enumerate(zip(meta_grad(net, tasks), meta_grad(net, tasks, batch_tasks=False))):
        np.testing.assert_allclose(b, sum(g[i] for g in per_task), rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(b, lp, rtol=1e-10, atol=1e-12)


def test_meta_learning_improves_few_shot_accuracy():
    nx.manual_seed(0)
    tasks = class_tasks(40, ways=5, per_class=6, dim=20, seed=3)
    net = PrototypicalNetworks(mlp(sizes=(20, 32, 16)))
    history = net.meta_learn(tasks, epochs=4, tasks_per_batch=8)
    assert history["accuracy"][-1] > history["accuracy"][0] and history["loss"][-1] < history["loss"][0]


def test_bad_input_is_named():
    net = PrototypicalNetworks(mlp(sizes=(5, 7, 4)))
    sx, sy, qx, qy = class_tasks(1, int_labels=True)[0]
    with pytest.raises(ValueError, match="distance_metric must be one of"):
        PrototypicalNetworks(mlp(), distance_metric="manhattan")
    holey = sy.clone()
    holey[holey == 1] = 0  # no support example of class 1 left
    with pytest.raises(ValueError, match="task 1 has no support examples of class 1"):
        net.meta_learn([(sx, sy, qx, qy), (sx, holey, qx, qy)], epochs=1)
    with pytest.raises(ValueError, match="not class labels"):
        net.meta_learn([(sx, sx[:, :1], qx, qx[:, :1])], epochs=1)
    with pytest.raises(ValueError, match="both support_x and support_y"):
        net(qx, sx)
