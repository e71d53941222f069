"""The workloads in PyTorch (a benchmark-only peer): a per-task loop, as learn2learn and higher run MAML,
and ``torch.func`` (``grad`` inside ``vmap`` over the tasks). The networks are written as functions of a
parameter dict with ``torch.nn.functional``, the fastest way PyTorch offers to run a model at adapted
weights (no module cloning); BatchNorm always uses the batch's statistics, as neurenix's meta-learners do."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .workloads import Data, Runner, Workload, resnet12_widths


def forward(w: Workload, p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    if w.model == "mlp":
        x = F.relu(F.linear(x, p["0.weight"], p["0.bias"]))
        x = F.relu(F.linear(x, p["2.weight"], p["2.bias"]))
        return F.linear(x, p["4.weight"], p["4.bias"])
    if w.model == "resnet12":
        return _resnet12(w, p, x)
    for b in range(4):
        x = F.conv2d(x, p[f"{4 * b}.weight"], p[f"{4 * b}.bias"], padding=1)
        x = F.batch_norm(x, None, None, p[f"{4 * b + 1}.weight"], p[f"{4 * b + 1}.bias"], training=True, eps=1e-5)
        x = F.max_pool2d(F.relu(x), 2)
    x = x.flatten(1)
    return F.linear(x, p["17.weight"], p["17.bias"]) if "17.weight" in p else x


def _resnet12(w: Workload, p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """MetaOptNet's ResNet-12 embedding (neurenix.models.ResNet12's names), mean-pooled."""
    def norm(h, name):
        return F.batch_norm(h, None, None, p[f"{name}.weight"], p[f"{name}.bias"], training=True, eps=1e-5)

    for i in range(1, len(resnet12_widths(w)) + 1):
        b = f"layer{i}.0."
        out = F.leaky_relu(norm(F.conv2d(x, p[b + "conv1.weight"], padding=1), b + "bn1"), 0.1)
        out = F.leaky_relu(norm(F.conv2d(out, p[b + "conv2.weight"], padding=1), b + "bn2"), 0.1)
        out = norm(F.conv2d(out, p[b + "conv3.weight"], padding=1), b + "bn3")
        shortcut = norm(F.conv2d(x, p[b + "downsample.0.weight"]), b + "downsample.1")
        x = F.max_pool2d(F.leaky_relu(out + shortcut, 0.1), 2)
    return x.mean((2, 3))


def loss(w: Workload, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One task's loss: mean squared error, or cross-entropy of class indices."""
    return F.cross_entropy(pred, y) if w.ways else ((pred - y) ** 2).mean()


def _setup(w: Workload, d: Data, weights: dict[str, np.ndarray]):
    params = {n: torch.tensor(v, requires_grad=True) for n, v in weights.items()}
    arrays = [torch.from_numpy(np.ascontiguousarray(a)) for a in (d.support_x, d.support_y, d.query_x, d.query_y)]
    return params, arrays


def _state(params: dict[str, torch.Tensor], out: dict) -> dict[str, np.ndarray]:
    return ({"loss": np.float64(out["loss"])} | {f"grad {n}": p.grad.numpy().copy() for n, p in params.items()}
            | {f"param {n}": p.detach().numpy().copy() for n, p in params.items()})


def adapt(w: Workload, fast: dict[str, torch.Tensor], sx: torch.Tensor, sy: torch.Tensor,
          grad_fn) -> dict[str, torch.Tensor]:
    """MAML's inner loop: ``inner_steps`` of ``w - lr * grad``, ``grad_fn(fast, sx, sy)`` giving the gradients."""
    for _ in range(w.inner_steps):
        g = grad_fn(fast, sx, sy)
        fast = {n: fast[n] - w.inner_lr * (g[n].detach() if w.first_order else g[n]) for n in fast}
    return fast


def build_loop(w: Workload, d: Data, weights: dict[str, np.ndarray]) -> Runner:
    """MAML or Reptile with a Python loop over tasks (a backward per task, as learn2learn's examples do),
    or a ProtoNets episode (one task: nothing to loop over)."""
    params, arrays = _setup(w, d, weights)
    tasks = [tuple(a[t] for a in arrays) for t in range(w.tasks)]
    if w.kind.startswith("protonet"):
        return _protonet(w, params, tasks[0])
    opt = (torch.optim.SGD if w.kind == "reptile" else torch.optim.Adam)(params.values(), lr=w.meta_lr)
    out = {}

    def grad_fn(fast, sx, sy):
        vals = list(fast.values())
        g = torch.autograd.grad(loss(w, forward(w, fast, sx), sy), vals, create_graph=not w.first_order)
        return dict(zip(fast, g))

    def maml_step() -> float:
        opt.zero_grad()
        total = 0.0
        for sx, sy, qx, qy in tasks:
            q = loss(w, forward(w, adapt(w, params, sx, sy, grad_fn), qx), qy)
            q.backward()
            total = total + q.detach()
        opt.step()
        out["loss"] = total.item() / len(tasks)
        return out["loss"]

    def reptile_step() -> float:
        drift = {n: torch.zeros_like(p) for n, p in params.items()}
        total = 0.0
        for sx, sy, qx, qy in tasks:
            fast = {n: p.detach().requires_grad_() for n, p in params.items()}
            for k in range(w.inner_steps):  # on the support and query sets in turn, as neurenix's Reptile
                g = grad_fn(fast, *((sx, sy) if k % 2 == 0 else (qx, qy)))
                fast = {n: (fast[n] - w.inner_lr * g[n]).detach().requires_grad_() for n in fast}
            with torch.no_grad():
                for n, p in params.items():
                    drift[n] += p - fast[n]
                total = total + loss(w, forward(w, fast, qx), qy)
        opt.zero_grad()
        for n, p in params.items():
            p.grad = drift[n] / len(tasks)
        opt.step()
        out["loss"] = total.item() / len(tasks)
        return out["loss"]

    return Runner(maml_step if w.kind == "maml" else reptile_step, lambda: _state(params, out))


def build_vmap(w: Workload, d: Data, weights: dict[str, np.ndarray], compiled: bool = False) -> Runner:
    """MAML with ``torch.func``: the inner gradient by ``grad``, all tasks at once by ``vmap``, the meta-gradient
    by ordinary autograd through both (they compose). ``compiled``: the meta-objective under ``torch.compile``
    (where it cannot take a step, the first step raises and the benchmark records why)."""
    if w.kind != "maml":
        raise ValueError(f"{w.name}: torch.func is benchmarked for MAML only")
    params, arrays = _setup(w, d, weights)
    opt = torch.optim.Adam(params.values(), lr=w.meta_lr)
    out = {}

    def grad_fn(fast, sx, sy):
        return torch.func.grad(lambda f: loss(w, forward(w, f, sx), sy))(fast)

    def task_loss(p, sx, sy, qx, qy):
        return loss(w, forward(w, adapt(w, p, sx, sy, grad_fn), qx), qy)

    batched = torch.func.vmap(task_loss, in_dims=(None, 0, 0, 0, 0))

    def objective(p, *a):
        return batched(p, *a).sum()

    objective = torch.compile(objective) if compiled else objective

    def step() -> float:
        opt.zero_grad()
        total = objective(params, *arrays)
        total.backward()
        opt.step()
        out["loss"] = total.item() / w.tasks
        return out["loss"]

    return Runner(step, lambda: _state(params, out))


def build_compiled(w: Workload, d: Data, weights: dict[str, np.ndarray]) -> Runner:
    """``build_vmap``'s meta-objective under ``torch.compile``."""
    return build_vmap(w, d, weights, compiled=True)


def _protonet(w: Workload, params: dict[str, torch.Tensor], task: tuple, embed=None) -> Runner:
    """A ProtoNets episode; ``embed(x)`` runs the network (default: ``forward`` at ``params``)."""
    sx, sy, qx, qy = task
    embed = embed or (lambda x: forward(w, params, x))
    one_hot = F.one_hot(sy, w.ways).to(torch.float32)
    counts = one_hot.sum(0)[:, None]
    out = {}

    def logits(support: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        protos = one_hot.T @ support / counts
        return -((query[:, None] - protos[None]) ** 2).sum(-1)

    if w.kind == "protonet_infer":
        def infer() -> np.ndarray:
            with torch.no_grad():  # support and query embedded apart, as a classifier for a new task does
                out["logits"] = logits(embed(sx), embed(qx))
                return out["logits"].argmax(-1).numpy()
        return Runner(infer, lambda: {"logits": out["logits"].numpy()})

    opt = torch.optim.Adam(params.values(), lr=w.meta_lr)
    rows = torch.cat([sx, qx])

    def train() -> float:
        opt.zero_grad()
        emb = embed(rows)
        q = F.cross_entropy(logits(emb[:len(sx)], emb[len(sx):]), qy)
        q.backward()
        opt.step()
        out["loss"] = q.item()
        return out["loss"]

    return Runner(train, lambda: _state(params, out))


def build_modules(w: Workload, d: Data, weights: dict[str, np.ndarray]) -> Runner:
    """A ProtoNets episode as a PyTorch user usually writes it: an ``nn.Sequential`` Conv-4 whose BatchNorm
    layers track running statistics (the default), called as a module. The functional peer (``build_loop``)
    skips the running statistics and the modules' call overhead: the faster of the two PyTorch setups."""
    if not w.kind.startswith("protonet"):
        raise ValueError(f"build_modules: ProtoNets workloads only, not {w.kind!r}")
    layers, c = [], 1
    for _ in range(4):
        layers += [torch.nn.Conv2d(c, w.channels, 3, padding=1), torch.nn.BatchNorm2d(w.channels), torch.nn.ReLU(),
                   torch.nn.MaxPool2d(2)]
        c = w.channels
    net = torch.nn.Sequential(*layers, torch.nn.Flatten())
    with torch.no_grad():
        for n, p in net.named_parameters():
            p.copy_(torch.from_numpy(weights[n]))
    params = dict(net.named_parameters())
    sx, sy, qx, qy = (torch.from_numpy(np.ascontiguousarray(a[0])) for a in (d.support_x, d.support_y, d.query_x,
                                                                            d.query_y))
    return _protonet(w, params, (sx, sy, qx, qy), lambda x: net(x))
