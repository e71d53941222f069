"""The workloads in neurenix, as a user writes them: a model from ``neurenix.nn``, a meta-learner from
``neurenix.meta``, and ``meta_learn`` for one meta-iteration (one epoch of one meta-batch)."""

from __future__ import annotations

import numpy as np

import neurenix as nx
from neurenix import nn
from neurenix.meta import MAML, PrototypicalNetworks, Reptile
from neurenix.models import Conv4, ResNet12
from neurenix.optim import SGD

from .workloads import Data, Runner, Workload, resnet12_widths


def model(w: Workload, weights: dict[str, np.ndarray]) -> nn.Module:
    if w.model == "mlp":
        net = nn.Sequential(nn.Linear(1, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(), nn.Linear(40, 1))
    elif w.model == "resnet12":  # an embedding (ProtoNets)
        net = ResNet12(w.in_channels, resnet12_widths(w))
    else:  # MAML's has a linear head, ProtoNets' embeds
        net = Conv4(1, w.channels, w.ways if w.kind == "maml" else None, image_size=w.image)
    params = dict(net.named_parameters())
    if params.keys() != weights.keys():
        raise AssertionError(f"parameter names differ: {sorted(params)} vs {sorted(weights)}")
    with nx.no_grad():
        for name, p in params.items():
            p.copy_(nx.tensor(weights[name]))
    return net


def build(w: Workload, d: Data, weights: dict[str, np.ndarray], compile: bool = True) -> Runner:
    net = model(w, weights)
    if w.kind == "maml":
        learner = MAML(net, inner_lr=w.inner_lr, meta_lr=w.meta_lr, inner_steps=w.inner_steps,
                       first_order=w.first_order)
    elif w.kind == "reptile":
        learner = Reptile(net, inner_lr=w.inner_lr, meta_lr=w.meta_lr, inner_steps=w.inner_steps)
    else:
        learner = PrototypicalNetworks(net, meta_lr=w.meta_lr)
    tasks = [tuple(nx.tensor(a[t]) for a in (d.support_x, d.support_y, d.query_x, d.query_y)) for t in range(w.tasks)]
    if w.kind == "protonet_infer":
        return _inference(learner, tasks[0])
    out = {}
    # Reptile's workload is the paper's interpolation (SGD at meta_lr), as the PyTorch peer; its default is Adam
    optimizer = SGD(learner.parameters(), lr=w.meta_lr) if w.kind == "reptile" else None

    def step() -> float:
        out["loss"] = learner.meta_learn(tasks, optimizer, epochs=1, tasks_per_batch=len(tasks), shuffle=False,
                                         compile=compile)["loss"][0]
        return out["loss"]

    def state() -> dict[str, np.ndarray]:
        named = list(net.named_parameters())
        return ({"loss": np.float64(out["loss"])} | {f"grad {n}": p.grad.numpy() for n, p in named}
                | {f"param {n}": p.numpy() for n, p in named})

    return Runner(step, state)


def _inference(learner: PrototypicalNetworks, task: tuple) -> Runner:
    sx, sy, qx, _ = task
    out = {}

    def step() -> np.ndarray:
        with nx.no_grad():
            out["logits"] = learner(qx, sx, sy)
            return out["logits"].argmax(-1).numpy()

    return Runner(step, lambda: {"logits": out["logits"].numpy()})
