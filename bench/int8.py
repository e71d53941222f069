"""int8 post-training quantization: accuracy, size and speed against float32, side by side.

- ``accuracy``: per seed, ``neurenix train digits`` (Prototypical Networks, its defaults) saves its learner; the
  learner is quantized as a user would (``neurenix.quantization.quantize``: batch norms folded, every Conv2d int8,
  calibrated on 512 training images) and both are scored on the same 600 test tasks of held-out digits (the
  run's own, seed + 1000). The float and int8 accuracies, their difference per seed, mean and spread.
- ``size``: bytes of the tensors of the model's state (parameters and buffers) and of its ``neurenix.save`` file,
  int8 over float32, for the digits encoder, Conv-4 (64 channels, 84x84) and ResNet-12 (64-160-320-640).
- ``speed``: time of one forward pass, int8 against float32 in the same process (interleaved rounds, medians and
  their ratio): the digits encoder on an episode (100 images 1x8x8), Conv-4 on an 84x84 5-way 1-shot episode
  with 15 queries per class (80 images), an MLP with dynamic int8 Linear layers (batch 64, 1024 wide).

    python bench/int8.py --out bench/results/int8.json [--seeds 0 1 2] [--experiments accuracy size speed]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import neurenix as nx
from neurenix import models, nn
from neurenix import quantization as Q

ROOT = Path(__file__).resolve().parents[1]
CALIBRATION_IMAGES = 512


# -- accuracy ------------------------------------------------------------------------------------------------------


def _train(seed: int, path: str, quick: bool) -> None:
    extra = ["--iterations", "20", "--test-tasks", "10"] if quick else []
    cmd = [sys.executable, "-m", "neurenix.meta.cli", "train", "digits", "--algo", "protonet", "--seed", str(seed),
           "--save", path, "--quiet", "--threads", "1", *extra]
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def _scores(path: str, quick: bool) -> dict:
    from neurenix.meta import evaluate
    from neurenix.meta.checkpoint import load_checkpoint
    from neurenix.meta.cli import digits, parser
    from neurenix.meta.cli.evaluate import saved_run

    trained = saved_run(path, lambda name: parser().parse_args(["train", name]), {"digits": digits})
    learner = digits.learner(trained)
    load_checkpoint(path, learner, with_optimizer=False)
    learner.eval()
    split = digits.data(trained)
    tasks = digits.test_tasks(trained, 10 if quick else digits.TEST_TASKS, trained.seed + 1000, split)
    images = split["train"][0]
    pick = np.random.default_rng(trained.seed).choice(len(images), min(CALIBRATION_IMAGES, len(images)), replace=False)
    calibration = nx.tensor(images[pick])

    def calibrate(prepared):
        with nx.no_grad():
            prepared.model(calibration)

    quantized = Q.quantize(learner, calibrate)
    return {"float32": evaluate(learner, tasks).mean, "int8": evaluate(quantized, tasks).mean,
            "tasks": len(tasks), **_sizes(learner.model, quantized.model)}


def accuracy(seeds: list[int], quick: bool) -> dict:
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            path = os.path.join(tmp, f"protonet-{seed}.nx")
            _train(seed, path, quick)
            r = {"seed": seed, **_scores(path, quick)}
            r["difference"] = r["int8"] - r["float32"]
            runs.append(r)
            print(f"seed {seed}: float32 {r['float32']:.2%}, int8 {r['int8']:.2%}", flush=True)
    return {"runs": runs, **{k: _summary([r[k] for r in runs]) for k in ("float32", "int8", "difference")}}


def _summary(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


# -- size ----------------------------------------------------------------------------------------------------------


def _state_bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.dtype.itemsize for t in model.state_dict().values())


def _file_bytes(model: nn.Module) -> int:
    f = io.BytesIO()
    nx.save(model.state_dict(), f)
    return len(f.getvalue())


def _sizes(float_model: nn.Module, int8_model: nn.Module) -> dict:
    s = {"float32_bytes": _state_bytes(float_model), "int8_bytes": _state_bytes(int8_model),
         "float32_file": _file_bytes(float_model), "int8_file": _file_bytes(int8_model)}
    s["ratio"], s["file_ratio"] = s["int8_bytes"] / s["float32_bytes"], s["int8_file"] / s["float32_file"]
    return s


def _digits_encoder() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.Flatten())


BACKBONES = {
    "digits-encoder": (_digits_encoder, (1, 8, 8)),
    "conv4-84": (lambda: models.Conv4(3, 64, image_size=84), (3, 84, 84)),
    "resnet12": (lambda: models.ResNet12(), (3, 84, 84)),
}


def _quantized(make, shape, batch: int = 8):
    nx.manual_seed(0)
    model = make().eval()
    x = nx.randn(batch, *shape)
    return model, Q.quantize(model, lambda p: p(x)), x


def size() -> dict:
    out = {}
    for name, (make, shape) in BACKBONES.items():
        model, q, _ = _quantized(make, shape, batch=2)
        out[name] = _sizes(model, q)
        print(f"{name}: int8 {out[name]['ratio']:.3f} of float32 (file {out[name]['file_ratio']:.3f})", flush=True)
    return out


# -- speed ---------------------------------------------------------------------------------------------------------


def _median_seconds(fn, x, rounds: int) -> float:
    times = []
    with nx.no_grad():
        fn(x)  # warm up (first calls compile nothing here, but fill caches)
        for _ in range(rounds):
            start = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def _pair(float_model, int8_model, x, rounds: int, repeats: int = 5) -> dict:
    """Interleaved medians: each repeat times both, so that a busy spell of the machine hits both."""
    f, q = [], []
    for _ in range(repeats):
        f.append(_median_seconds(float_model, x, rounds))
        q.append(_median_seconds(int8_model, x, rounds))
    ft, qt = statistics.median(f), statistics.median(q)
    return {"float32_ms": 1e3 * ft, "int8_ms": 1e3 * qt, "int8_over_float32": qt / ft,
            "ratios": [b / a for a, b in zip(f, q)]}


def speed(quick: bool) -> dict:
    rounds = 2 if quick else 10
    out = {}
    workloads = {"digits-encoder (100 x 1x8x8)": (_digits_encoder, (1, 8, 8), 100),
                 "conv4-84 (80 x 3x84x84)": (lambda: models.Conv4(3, 64, image_size=84), (3, 84, 84), 80)}
    for name, (make, shape, batch) in workloads.items():
        model, q, _ = _quantized(make, shape)
        x = nx.randn(batch, *shape)
        out[name] = _pair(model, q, x, rounds)
        print(f"{name}: int8 {out[name]['int8_over_float32']:.2f}x the float32 time", flush=True)
    nx.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10)).eval()
    name = "mlp dynamic (64 x 1024)"
    out[name] = _pair(mlp, Q.quantize_dynamic(mlp), nx.randn(64, 1024), rounds * 5)
    print(f"{name}: int8 {out[name]['int8_over_float32']:.2f}x the float32 time", flush=True)
    return out


def _machine() -> dict:
    from neurenix.backend.registry import kernel_providers

    providers = {k: v[0] for k, v in kernel_providers("cpu").items()}
    isa = None
    try:
        from neurenix_backend_cpu import native
        isa = native.ffi.string(native.lib.nx_int8_isa()).decode() if hasattr(native.lib, "nx_int8_isa") else None
    except ImportError:
        pass
    return {"python": platform.python_version(), "machine": platform.machine(), "threads": nx.get_num_threads(),
            "int8_path": isa, "quantized_linear": providers.get("quantized_linear"),
            "quantized_conv2d": providers.get("quantized_conv2d")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="bench/results/int8.json")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--experiments", nargs="+", default=["accuracy", "size", "speed"],
                   choices=["accuracy", "size", "speed"])
    p.add_argument("--quick", action="store_true", help="a smoke run: few iterations, tasks and rounds")
    args = p.parse_args()
    result = {"meta": _machine(), "quick": args.quick}
    previous = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
    for name in args.experiments:
        result[name] = {"accuracy": lambda: accuracy(args.seeds, args.quick), "size": size,
                        "speed": lambda: speed(args.quick)}[name]()
    merged = {**{k: v for k, v in previous.items() if k in ("accuracy", "size", "speed")}, **result}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(merged, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
