"""Seed 001's two complete examples (MAML sine, Prototypical Networks) on every installed device type,
with ``nx.init({"device": ...})`` naming it: the history and test metrics match the cpu run within
float32 tolerance. Fewer tasks and epochs than the seed (a software GPU is slow); otherwise as written.
"""

import os

import numpy as np
import pytest

import neurenix as nx
from neurenix.meta import MAML, PrototypicalNetworks, generate_classification_tasks, generate_regression_tasks
from neurenix.nn import Linear, ReLU, Sequential
from neurenix.optim import Adam

REQUIRED = {r.strip() for r in os.environ.get("NEURENIX_REQUIRE_BACKENDS", "").split(",")}
DEVICE_TYPES = ["webgpu", "cuda", "rocm", "toy"]


def maml_example(device, num_tasks=12, epochs=2):
    nx.init({"device": device})
    model = Sequential([Linear(1, 40), ReLU(), Linear(40, 40), ReLU(), Linear(40, 1)])
    meta_model = MAML(model=model, inner_lr=0.01, meta_lr=0.001, first_order=False, inner_steps=5)
    tasks = generate_regression_tasks(num_tasks=num_tasks, num_samples_per_task=20)
    train_tasks, test_tasks = tasks[:8], tasks[8:]
    meta_optimizer = Adam(meta_model.parameters(), lr=meta_model.meta_lr)
    history = meta_model.meta_learn(tasks=train_tasks, meta_optimizer=meta_optimizer, epochs=epochs, tasks_per_batch=4)
    test_losses = []
    for support_x, support_y, query_x, query_y in test_tasks:
        adapted_model = meta_model.adapt_to_task(support_x, support_y)
        predictions = adapted_model(query_x)
        mse = ((predictions - query_y) ** 2).mean().item()
        test_losses.append(mse)
    assert str(predictions.device).startswith(device)
    return history["loss"], test_losses


def protonet_example(device, num_tasks=12, epochs=2):
    nx.init({"device": device})
    embedding_model = Sequential([Linear(20, 64), ReLU(), Linear(64, 64), ReLU(), Linear(64, 32)])
    meta_model = PrototypicalNetworks(embedding_model=embedding_model, distance_metric="euclidean", meta_lr=0.001)
    tasks = generate_classification_tasks(num_tasks=num_tasks, num_classes=5, num_samples_per_class=10, input_dim=20)
    train_tasks, test_tasks = tasks[:8], tasks[8:]
    meta_optimizer = Adam(meta_model.parameters(), lr=meta_model.meta_lr)
    history = meta_model.meta_learn(tasks=train_tasks, meta_optimizer=meta_optimizer, epochs=epochs, tasks_per_batch=4)
    test_accuracies = []
    for support_x, support_y, query_x, query_y in test_tasks:
        adapted_model = meta_model.adapt_to_task(support_x, support_y)
        predictions = adapted_model(query_x)
        pred_classes = predictions.argmax(dim=1)
        true_classes = query_y.argmax(dim=1)
        accuracy = (pred_classes == true_classes).float().mean().item()
        test_accuracies.append(accuracy)
    assert str(predictions.device).startswith(device)
    return history["loss"] + history["accuracy"], test_accuracies


def _run(example, device):
    nx.manual_seed(0)
    return example(device)


@pytest.mark.parametrize("example", [maml_example, protonet_example], ids=["maml-sine", "protonet"])
@pytest.mark.parametrize("device_type", DEVICE_TYPES)
def test_seed_example_matches_cpu(device_type, example):
    if nx.get_device_count(device_type) == 0 and device_type not in REQUIRED:
        reasons = [s.reason for s in nx.list_backends() if s.device_type == device_type and s.reason]
        pytest.skip(f"no {device_type} device: {reasons[0] if reasons else 'no backend installed'}")
    default = nx.default_device()
    try:
        on_device, on_cpu = _run(example, f"{device_type}:0"), _run(example, "cpu")
    finally:
        nx.set_default_device(default)
    for got, want in zip(on_device, on_cpu):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
