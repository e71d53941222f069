"""The convolution kernels alone, side by side with oneDNN's (issue 21: measure a well-kept library before
choosing): for each 3x3 convolution of a Conv-4 step, the C backend's three kernels (forward, input gradient,
weight gradient: Winograd F(2x2, 3x3), or core's columns where Winograd does not apply) against the same three
products in PyTorch 2.13's CPU build, whose convolutions are oneDNN's (``torch.backends.mkldnn``), at one and
two threads. Same float32 data, kernels interleaved round by round, medians; JSON on stdout (or --out).

    python bench/conv_kernels.py --rounds 15 --out bench/results/conv_kernels.json

oneDNN installs from PyPI (``onednn``), but called through PyTorch it needs no binding of ours, and PyTorch
picks its algorithm (direct or Winograd, by shape) as it would for a user.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as TF
from neurenix_backend_cpu import KERNELS

import neurenix as nx

#: (name, images, channels in, channels out, side): ProtoNets Conv-4's layers on a 5-way 5-shot, 15-query
#: episode of 28x28 images (100 images), as bench/peers/workloads.py has them
LAYERS = [("layer 1, 1->64 at 28x28", 100, 1, 64, 28), ("layer 2, 64->64 at 14x14", 100, 64, 64, 14),
          ("layer 3, 64->64 at 7x7", 100, 64, 64, 7), ("layer 4, 64->64 at 3x3", 100, 64, 64, 3)]
GEOMETRY = ((1, 1), (1, 1), (1, 1), 1)  # stride, padding, dilation, groups


def ours(x, w, g):
    """The three kernels of the C backend (what F.conv2d and its gradients call)."""
    def run():
        KERNELS["conv2d"](x, w, None, *GEOMETRY)
        KERNELS["conv2d_input_grad"](g, w, x.shape, *GEOMETRY)
        KERNELS["conv2d_weight_grad"](x, g, w.shape, *GEOMETRY)
    return run


def onednn(x, w, g):
    """PyTorch's forward and its two gradients (torch.ops.aten.convolution_backward: oneDNN on this build)."""
    tx, tw, tg = (torch.from_numpy(a) for a in (x, w, g))

    def run():
        TF.conv2d(tx, tw, None, 1, 1)
        torch.ops.aten.convolution_backward(tg, tx, tw, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1,
                                            [True, True, False])
    return run


def measure(threads: int, rounds: int) -> list[dict]:
    nx.set_num_threads(threads)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    out = []
    for name, n, c, o, side in LAYERS:
        x = rng.standard_normal((n, c, side, side), dtype=np.float32)
        w = rng.standard_normal((o, c, 3, 3), dtype=np.float32) * 0.1
        g = rng.standard_normal((n, o, side, side), dtype=np.float32)
        runs = {"neurenix": ours(x, w, g), "oneDNN (PyTorch)": onednn(x, w, g)}
        times: dict[str, list[float]] = {k: [] for k in runs}
        for run in runs.values():
            run(), run()
        for _ in range(rounds):
            for k, run in runs.items():
                t = time.perf_counter()
                run()
                times[k].append(time.perf_counter() - t)
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        out.append({"layer": name, "threads": threads, "ms": med,
                    "ratio": med["neurenix"] / med["oneDNN (PyTorch)"]})
        print(f"{threads} thread(s) {name}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in med.items()) +
              f", ratio {out[-1]['ratio']:.2f}", file=sys.stderr, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", nargs="*", type=int, default=[1, 2])
    ap.add_argument("--out", help="write the JSON here as well")
    args = ap.parse_args()
    report = {"benchmark": "conv_kernels", "rounds": args.rounds, "torch": torch.__version__,
              "mkldnn": torch.backends.mkldnn.is_available(), "machine": platform.machine(),
              "date": time.strftime("%Y-%m-%d"),
              "rows": [r for t in args.threads for r in measure(t, args.rounds)]}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
