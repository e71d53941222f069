"""The C backend's int8 kernels (quantized_linear, quantized_conv2d) against its float32 kernels on the same
shapes: Linear layers, and the 3x3 convolutions of a Conv-4 forward pass on a 5-way 5-shot, 10-query episode of
84x84 images (75 images; 3->64 at 84x84, 64->64 at 42x42 and 21x21). The int8 kernels run on each path this
CPU has (AVX-512 VNNI / aarch64 dotprod, and the generic one); the float32 ones are the plugin's ``linear`` (a
single weight: NumPy's BLAS) and ``conv2d`` (Winograd F(2x2, 3x3)). Kernels interleaved round by round; best and
median of the rounds; ratios are float32 time over int8 time (above 1: int8 faster).

    python bench/int8_kernels.py --out bench/results/int8_kernels.json [--quick] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np
from neurenix_backend_cpu import native, quantized
from neurenix_backend_cpu.plugin import KERNELS

import neurenix as nx

#: (name, rows, in, out)
LINEARS = [("64x1600->64", 64, 1600, 64), ("256x1024->1024", 256, 1024, 1024), ("1x1024->1024", 1, 1024, 1024)]
#: (name, images, channels in, channels out, side), 3x3, stride 1, padding 1
CONVS = [("3->64 at 84x84", 75, 3, 64, 84), ("64->64 at 42x42", 75, 64, 64, 42), ("64->64 at 21x21", 75, 64, 64, 21)]
GEOMETRY = ((1, 1), (1, 1), (1, 1), 1)  # stride, padding, dilation, groups
X_SCALE, ZERO_POINT = 0.05, 3


def cases(quick: bool):
    """(kind, name, MACs, {variant: fn}) for each shape; variants: the int8 paths and float32."""
    rng = np.random.default_rng(0)
    paths = sorted({quantized.best(), "generic"}, key=lambda p: p == "generic")
    for name, m, k, o in LINEARS[:2] if quick else LINEARS:
        x = rng.standard_normal((m, k)).astype(np.float32)
        wq = rng.integers(-128, 128, (o, k), dtype=np.int8)
        ws, b = (rng.random(o) * 0.01).astype(np.float32), rng.standard_normal(o).astype(np.float32)
        wf = (wq * ws[:, None]).astype(np.float32)
        fns = {f"int8 {p}": (p, lambda x=x, wq=wq, ws=ws, b=b: KERNELS["quantized_linear"](
            x, wq, ws, b, X_SCALE, ZERO_POINT)) for p in paths}
        fns["float32"] = (None, lambda x=x, wf=wf, b=b: KERNELS["linear"](x, wf, b))
        yield "linear", name, m * k * o, fns
    for name, n, c, o, side in CONVS:
        n = 15 if quick else n
        x = rng.standard_normal((n, c, side, side)).astype(np.float32)
        wq = rng.integers(-128, 128, (o, c, 3, 3), dtype=np.int8)
        ws, b = (rng.random(o) * 0.01).astype(np.float32), rng.standard_normal(o).astype(np.float32)
        wf = (wq * ws[:, None, None, None]).astype(np.float32)
        fns = {f"int8 {p}": (p, lambda x=x, wq=wq, ws=ws, b=b: KERNELS["quantized_conv2d"](
            x, wq, ws, b, X_SCALE, ZERO_POINT, *GEOMETRY)) for p in paths}
        fns["float32"] = (None, lambda x=x, wf=wf, b=b: KERNELS["conv2d"](x, wf, b, *GEOMETRY))
        yield "conv2d", f"{name}, {n} images", n * side * side * c * 9 * o, fns


def measure(threads: int, rounds: int, quick: bool) -> list[dict]:
    nx.set_num_threads(threads)
    out = []
    for kind, name, macs, fns in cases(quick):
        times = {v: [] for v in fns}
        for _ in range(rounds + 1):  # the first round warms up (page faults, thread start), not counted
            for variant, (path, fn) in fns.items():
                if path:
                    quantized.use_isa(path)
                start = time.perf_counter()
                fn()
                times[variant].append(time.perf_counter() - start)
        quantized.use_isa("auto")
        row = {"kind": kind, "shape": name, "threads": threads, "macs": macs}
        for variant, ts in times.items():
            ts = ts[1:]
            row[variant] = {"best_ms": round(min(ts) * 1e3, 3), "median_ms": round(statistics.median(ts) * 1e3, 3),
                            "gmacs_best": round(macs / min(ts) / 1e9, 1)}
        for variant in fns:
            if variant != "float32":
                row[f"float32 / {variant}"] = {
                    "best": round(row["float32"]["best_ms"] / row[variant]["best_ms"], 2),
                    "median": round(row["float32"]["median_ms"] / row[variant]["median_ms"], 2)}
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two Linear shapes, 15 images per conv, 5 rounds")
    ap.add_argument("--rounds", type=int, default=None, help="timed rounds per kernel (default 15, quick 5)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", default="bench/results/int8_kernels.json")
    args = ap.parse_args()
    rounds = args.rounds or (5 if args.quick else 15)
    results = [row for t in args.threads for row in measure(t, rounds, args.quick)]
    report = {"machine": {"cpu": _cpu(), "cores": os.cpu_count(), "python": platform.python_version(),
                          "kernels_target": native.TARGET, "int8_best": quantized.best()},
              "rounds": rounds, "quick": args.quick, "results": results}
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        return platform.processor()


if __name__ == "__main__":
    main()
