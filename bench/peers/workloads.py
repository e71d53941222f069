"""The workloads: their sizes, NumPy data and initial weights, shared by every implementation."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Workload:
    """One benchmark workload. ``kind`` picks the algorithm: "maml" (second or first order), "reptile",
    "protonet" (a training episode) or "protonet_infer" (an inference episode)."""

    name: str
    kind: str
    title: str
    model: str  # "mlp" (1-40-40-1), "conv4" (64 channels, BatchNorm, ReLU, max-pool) or "resnet12" (MetaOptNet's)
    tasks: int  # tasks per meta-iteration (1 for an episode)
    support: int  # support rows per task (per class times ways for classification)
    query: int
    ways: int = 0  # 0: regression
    first_order: bool = False
    inner_lr: float = 0.01
    inner_steps: int = 1
    meta_lr: float = 1e-3
    channels: int = 64  # ResNet-12: its first block's width (64: widths 64, 160, 320, 640)
    image: int = 28
    in_channels: int = 1
    optional: bool = False  # run by bench/vs_pytorch.py only when asked: minutes per run

    def small(self) -> Workload:
        """The same workload at test size (few tasks, few channels, small images)."""
        return replace(self, tasks=min(self.tasks, 3), channels=min(self.channels, 4), image=min(self.image, 16))


def _sine(name: str, title: str, **kw) -> Workload:
    return Workload(name, kw.pop("kind", "maml"), title, "mlp", tasks=25, support=10, query=10, **kw)


def _conv(name: str, kind: str, title: str, shots: int, tasks: int, **kw) -> Workload:
    return Workload(name, kind, title, kw.pop("model", "conv4"), tasks=tasks, support=5 * shots, query=5 * 15,
                    ways=5, **kw)


WORKLOADS: dict[str, Workload] = {w.name: w for w in [
    _sine("maml_sine", "MAML sine, second order"),
    _sine("fomaml_sine", "MAML sine, first order", first_order=True),
    _sine("reptile_sine", "Reptile sine, 8 inner SGD steps", kind="reptile", inner_lr=0.02, inner_steps=8, meta_lr=0.1),
    _conv("protonet_conv4_train", "protonet", "ProtoNets Conv-4, training episode", shots=5, tasks=1),
    _conv("protonet_conv4_infer", "protonet_infer", "ProtoNets Conv-4, inference episode", shots=5, tasks=1),
    _conv("maml_conv4", "maml", "MAML Conv-4, second order", shots=1, tasks=32, inner_lr=0.4),
    _conv("fomaml_conv4", "maml", "MAML Conv-4, first order", shots=1, tasks=32, inner_lr=0.4, first_order=True),
    # miniImageNet's shape (3x84x84), 5-way 5-shot with 15 queries per class: about 2 TFLOP an episode
    _conv("protonet_resnet12_train", "protonet", "ProtoNets ResNet-12, training episode", shots=5, tasks=1,
          model="resnet12", image=84, in_channels=3, optional=True),
]}


def parameter_shapes(w: Workload) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes, named as a ``Sequential`` of the layers names them in both frameworks."""
    if w.model == "mlp":
        return {"0.weight": (40, 1), "0.bias": (40,), "2.weight": (40, 40), "2.bias": (40,),
                "4.weight": (1, 40), "4.bias": (1,)}
    if w.model == "resnet12":
        return _resnet12_shapes(w)
    shapes, c = {}, 1
    for block in range(4):  # Conv2d, BatchNorm2d, ReLU, MaxPool2d
        shapes |= {f"{4 * block}.weight": (w.channels, c, 3, 3), f"{4 * block}.bias": (w.channels,),
                   f"{4 * block + 1}.weight": (w.channels,), f"{4 * block + 1}.bias": (w.channels,)}
        c = w.channels
    if w.kind == "maml":  # a linear head on the flattened features (index 16 is Flatten)
        shapes |= {"17.weight": (w.ways, w.channels * feature_side(w) ** 2), "17.bias": (w.ways,)}
    return shapes


def resnet12_widths(w: Workload) -> tuple[int, ...]:
    """MetaOptNet's widths (64, 160, 320, 640) scaled to the first block's (4, 10, 20, 40 at test size)."""
    return w.channels, w.channels * 5 // 2, w.channels * 5, w.channels * 10


def _resnet12_shapes(w: Workload) -> dict[str, tuple[int, ...]]:
    """neurenix.models.ResNet12's parameters (MetaOptNet's names): per block three 3x3 convolutions without bias
    and their BatchNorms, a 1x1 convolution and BatchNorm on the shortcut."""
    shapes, c = {}, w.in_channels
    for i, width in enumerate(resnet12_widths(w), 1):
        block = f"layer{i}.0."
        for conv, bn, cin, k in (("conv1", "bn1", c, 3), ("conv2", "bn2", width, 3), ("conv3", "bn3", width, 3),
                                 ("downsample.0", "downsample.1", c, 1)):
            shapes |= {f"{block}{conv}.weight": (width, cin, k, k), f"{block}{bn}.weight": (width,),
                       f"{block}{bn}.bias": (width,)}
        c = width
    return shapes


def feature_side(w: Workload) -> int:
    side = w.image
    for _ in range(4):
        side //= 2
    return side


def initial_weights(w: Workload, seed: int = 0) -> dict[str, np.ndarray]:
    """PyTorch's default initialisation, drawn with NumPy: U(+-1/sqrt(fan_in)); BatchNorm scale 1, shift 0."""
    rng = np.random.default_rng(seed)
    out = {}
    if w.model == "resnet12":  # BatchNorm: 1 and 0; convolutions: U(+-1/sqrt(fan_in)) (no bias)
        for name, shape in parameter_shapes(w).items():
            bound = 1 / math.sqrt(math.prod(shape[1:])) if len(shape) == 4 else None
            out[name] = (rng.uniform(-bound, bound, size=shape) if bound else
                         np.full(shape, 1.0 if name.endswith("weight") else 0.0)).astype(np.float32)
        return out
    for name, shape in parameter_shapes(w).items():
        layer = int(name.split(".")[0])
        if w.model == "conv4" and layer < 16 and layer % 4 == 1:  # BatchNorm
            out[name] = np.full(shape, 1.0 if name.endswith("weight") else 0.0, np.float32)
            continue
        weight = parameter_shapes(w)[f"{layer}.weight"]
        bound = 1 / math.sqrt(math.prod(weight[1:]))
        out[name] = rng.uniform(-bound, bound, size=shape).astype(np.float32)
    return out


@dataclass(frozen=True)
class Data:
    """A meta-batch as stacked arrays (tasks, rows, ...); labels are int64 class indices (tasks, rows)."""

    support_x: np.ndarray
    support_y: np.ndarray
    query_x: np.ndarray
    query_y: np.ndarray


def data(w: Workload, seed: int = 0) -> Data:
    """Sine tasks as in the MAML paper (A in [0.1, 5], phase in [0, pi], x in [-5, 5]), or random images
    with labels class by class (a class's rows together, as a task sampler gives them)."""
    rng = np.random.default_rng(seed)
    if w.ways == 0:
        a = rng.uniform(0.1, 5.0, (w.tasks, 1, 1))
        phase = rng.uniform(0.0, math.pi, (w.tasks, 1, 1))
        x = rng.uniform(-5.0, 5.0, (w.tasks, w.support + w.query, 1))
        y = a * np.sin(x - phase)
        f = [v.astype(np.float32) for v in (x, y)]
        return Data(f[0][:, :w.support], f[1][:, :w.support], f[0][:, w.support:], f[1][:, w.support:])

    def images(rows: int) -> np.ndarray:
        return rng.standard_normal((w.tasks, rows, w.in_channels, w.image, w.image), dtype=np.float32)

    def labels(rows: int) -> np.ndarray:
        return np.broadcast_to(np.repeat(np.arange(w.ways), rows // w.ways), (w.tasks, rows)).astype(np.int64)

    return Data(images(w.support), labels(w.support), images(w.query), labels(w.query))


@dataclass
class Runner:
    """One implementation of a workload, ready to run: ``step()`` is the timed unit and returns its result
    (a loss, or predictions); ``state()`` gives NumPy values to compare across implementations."""

    step: Callable[[], object]
    state: Callable[[], dict[str, np.ndarray]]
