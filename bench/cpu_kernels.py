"""neurenix-backend-cpu (C kernels) against core's NumPy reference, per kernel and end to end.

Per kernel: each C kernel (as the backend runs it, size thresholds included) against the NumPy kernel
(or core's composition, for optional kernels NumPy does not provide) at training sizes: a Conv-4 on
100 images of 1x28x28 and the 1-40-40-1 MLP batched over 25 tasks of 10 points. End to end:
forward+backward+Adam of that Conv-4 (4 blocks of 3x3 conv 64 channels, BatchNorm, ReLU, 2x2
max-pool), and forward+backward of the batched MLP (weights (25, out, in) through functional linear).
The C backend and the NumPy reference alternate round by round in one process (the ``cpu-c`` plugin
is unregistered and registered again at run time); each figure is a median over rounds. The whole
run is repeated with 1 and 2 threads (OMP_NUM_THREADS and OPENBLAS_NUM_THREADS, in a fresh process).

    python bench/cpu_kernels.py --out bench/results/cpu_kernels.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

THREADS = (1, 2)


def child(threads: int, rounds: int) -> dict:
    import numpy as np
    from neurenix_backend_cpu import KERNELS, plugin

    import neurenix as nx
    from neurenix.backend import reference

    nx.set_num_threads(threads)
    rng = np.random.default_rng(0)

    def arr(*shape, dtype=np.float32):
        return rng.standard_normal(shape).astype(dtype)

    act, small = arr(100, 64, 28, 28), arr(25, 10, 40)
    chan, bias = arr(1, 64, 1, 1), arr(25, 1, 40)
    pooled = arr(100, 64, 14, 14)
    ref = reference()  # NumPy's kernels, and core's compositions where NumPy has none
    cols = KERNELS["unfold"](act[:, :, :14, :14].copy(), (3, 3), (1, 1), (1, 1), (1, 1))
    pool_out, pool_idx = KERNELS["max_pool2d"](act, (2, 2), (2, 2), (0, 0), (1, 1))
    conv_params = [arr(64, 1, 3, 3), arr(64)] + [arr(64, 64, 3, 3), arr(64)] * 3 + [arr(64)] * 8 + [arr(5, 64), arr(5)]
    mlp_params = [arr(25, 40, 1), arr(25, 40), arr(25, 40, 40), arr(25, 40), arr(25, 1, 40), arr(25, 1)]

    def opt_args(ps):
        return [p.copy() for p in ps], [p * 0.1 for p in ps], [p * 0.01 for p in ps], [p * p for p in ps]

    w = arr(25, 40, 40)
    logits, wide = arr(75, 5), arr(1000, 64)
    one_hot = np.eye(5, dtype=np.float32)[np.arange(75) % 5]
    adam = (1e-3, 0.9, 0.999, 1e-8, 0.0, False, False)
    cases = {  # name -> (kernel, args)
        "add (100,64,28,28) + same": ("add", (act, act)),
        "add (100,64,28,28) + (1,64,1,1)": ("add", (act, chan)),
        "mul (100,64,28,28) * (1,64,1,1)": ("mul", (act, chan)),
        "sub (100,64,14,14) - (1,64,1,1)": ("sub", (pooled, chan)),
        "div (100,64,14,14) / (1,64,1,1)": ("div", (pooled, np.abs(chan) + 1)),
        "mul (100,64,28,28) * scalar": ("mul", (act, 0.5)),
        "add (25,10,40) + (25,1,40)": ("add", (small, bias)),
        "mul (25,10,40) * same": ("mul", (small, small)),
        "maximum (100,64,14,14), same": ("maximum", (pooled, pooled[::-1].copy())),
        "relu (100,64,28,28)": ("relu", (act,)),
        "relu_backward (100,64,28,28)": ("relu_backward", (act, act[::-1].copy())),
        "where (100,64,28,28), arrays": ("where", (act > 0, act, act[::-1].copy())),
        "where (100,64,28,28), a number": ("where", (act > 0, 0.0, act)),
        "relu (25,10,40)": ("relu", (small,)),
        "relu_backward (25,10,40)": ("relu_backward", (small, small)),
        "sum (100,64,28,28) over (0,2,3)": ("sum", (act, (0, 2, 3), True)),
        "mean (100,64,28,28) over (0,2,3)": ("mean", (act, (0, 2, 3), True)),
        "sum (25,10,40) over 1": ("sum", (small, (1,), True)),
        "sum (100,64,28,28) over all": ("sum", (act, (0, 1, 2, 3), False)),
        "max (100,64,14,14) over 1": ("max", (pooled, (1,), False)),
        "exp (100,64,14,14)": ("exp", (pooled,)),
        "exp (25,10,40)": ("exp", (small,)),
        "softmax (75,5)": ("softmax", (logits, 1)),
        "log_softmax (75,5)": ("log_softmax", (logits, 1)),
        "log_softmax (1000,64)": ("log_softmax", (wide, 1)),
        "softmax_backward (75,5)": ("softmax_backward", (logits, ref.softmax(logits, 1), 1)),
        "log_softmax_backward (1000,64)": ("log_softmax_backward", (wide, ref.log_softmax(wide, 1), 1)),
        "cross_entropy (75,5) one-hot": ("cross_entropy", (logits, one_hot)),
        "cross_entropy_backward (75,5)": ("cross_entropy_backward", (arr(75), ref.softmax(logits, 1), one_hot)),
        "linear (25,10,1) -> 40, per-task weights": ("linear", (arr(25, 10, 1), arr(25, 40, 1), arr(25, 40))),
        "linear (25,10,40) -> 40, per-task weights": ("linear", (small, w, arr(25, 40))),
        "linear (25,10,40) -> 1, per-task weights": ("linear", (small, arr(25, 1, 40), arr(25, 1))),
        "linear_backward (25,10,40) -> 40": ("linear_backward", (small, small, w, (True, True, True))),
        "linear_backward (25,10,1) -> 40, no input grad": ("linear_backward", (small, arr(25, 10, 1), arr(25, 40, 1),
                                                                               (False, True, True))),
        "linear_backward (25,10,40) -> 1": ("linear_backward", (arr(25, 10, 1), small, arr(25, 1, 40),
                                                                (True, True, True))),
        "unfold (100,64,14,14) 3x3 pad 1": ("unfold", (act[:, :, :14, :14].copy(), (3, 3), (1, 1), (1, 1), (1, 1))),
        "unfold (100,1,28,28) 3x3 pad 1": ("unfold", (arr(100, 1, 28, 28), (3, 3), (1, 1), (1, 1), (1, 1))),
        "fold (100,576,196) 3x3 pad 1": ("fold", (cols, (14, 14), (3, 3), (1, 1), (1, 1), (1, 1))),
        "max_pool2d (100,64,28,28) 2x2": ("max_pool2d", (act, (2, 2), (2, 2), (0, 0), (1, 1))),
        "max_pool2d_backward (100,64,28,28) 2x2": ("max_pool2d_backward",
                                                   (pool_out, pool_idx, (28, 28), (2, 2), (2, 2), (0, 0), (1, 1))),
        "matmul (25,10,40) @ (25,40,40)": ("matmul", (small, w)),
        "matmul (25,10,40) @ (25,40,40).mT": ("matmul", (small, w.swapaxes(1, 2))),
        "matmul (25,10,40).mT @ (25,10,40)": ("matmul", (small.swapaxes(1, 2), small)),
        "matmul (25,10,1) @ (25,1,40)": ("matmul", (arr(25, 10, 1), arr(25, 1, 40))),
        "adam_step Conv-4 params": ("adam_step", (*opt_args(conv_params), 3, *adam)),
        "adam_step MLP x25 params": ("adam_step", (*opt_args(mlp_params), 3, *adam)),
        "sgd_step momentum Conv-4 params": ("sgd_step", (*opt_args(conv_params)[:2], opt_args(conv_params)[2], 0.01,
                                                          0.9, 0.0, False, 0.0, False)),
    }
    kernels = {}
    for case, (kernel, args) in cases.items():
        c_fn, np_fn = KERNELS[kernel], getattr(ref, kernel)
        number = max(1, int(0.02 / max(_once(np_fn, args), 1e-7)))
        c_t, np_t = [], []
        for _ in range(rounds):
            c_t.append(_time(c_fn, args, number))
            np_t.append(_time(np_fn, args, number))
        c_us, np_us = statistics.median(c_t) * 1e6, statistics.median(np_t) * 1e6
        kernels[case] = {"kernel": kernel, "c_us": c_us, "numpy_us": np_us, "speedup": np_us / c_us}
    return {"threads": threads, "kernels": kernels, "end_to_end": end_to_end(nx, plugin, rounds)}


def _once(fn, args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def _time(fn, args, number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn(*args)
    return (time.perf_counter() - start) / number


def end_to_end(nx, plugin, rounds: int) -> dict:
    import numpy as np

    F = nx.nn.functional  # noqa: N806 - PyTorch's spelling
    nx.manual_seed(0)

    conv4 = nx.models.Conv4(1, 64, 5, image_size=28)
    opt = nx.optim.Adam(conv4.parameters(), lr=1e-3)
    images, labels = nx.randn(100, 1, 28, 28), nx.Tensor(np.arange(100) % 5)

    def conv4_step():
        opt.zero_grad()
        F.cross_entropy(conv4(images), labels).backward()
        opt.step()

    tasks, points = 25, 10
    ws = [nx.randn(tasks, o, i, requires_grad=True) for i, o in ((1, 40), (40, 40), (40, 1))]
    bs = [nx.zeros(tasks, o, requires_grad=True) for o in (40, 40, 1)]
    x = nx.randn(tasks, points, 1)
    y = x.sin()

    def mlp_step():
        h = x
        for i, (wt, bt) in enumerate(zip(ws, bs)):
            h = F.linear(h, wt, bt)
            if i < 2:
                h = h.relu()
        F.mse_loss(h, y).backward()
        for t in (*ws, *bs):
            t.grad = None

    out = {}
    for name, fn, number in (("Conv-4 forward+backward+Adam, 100 images 1x28x28", conv4_step, 1),
                             ("MLP 1-40-40-1 x25 tasks of 10 points, forward+backward", mlp_step, 50)):
        c_t, np_t = [], []
        for _ in range(2):  # warm-up both
            fn()
            with numpy_only(nx, plugin):
                fn()
        for _ in range(rounds):
            c_t.append(_time(fn, (), number))
            with numpy_only(nx, plugin):
                np_t.append(_time(fn, (), number))
        c_ms, np_ms = statistics.median(c_t) * 1e3, statistics.median(np_t) * 1e3
        out[name] = {"c_ms": c_ms, "numpy_ms": np_ms, "speedup": np_ms / c_ms}
    return out


class numpy_only:
    """Run the block on core's NumPy reference: the cpu-c plugin is unregistered, then registered again."""

    def __init__(self, nx, plugin):
        self.nx, self.plugin = nx, plugin

    def __enter__(self):
        self.nx.backend.unregister(self.plugin)

    def __exit__(self, *exc):
        self.nx.backend.register(self.plugin, "cpu-c")
        assert self.nx.Device("cpu").kernels.providers["matmul"] == "cpu-c"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="JSON output path")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        json.dump(child(args.child, args.rounds), sys.stdout)
        return
    runs = []
    for t in THREADS:
        env = {**os.environ, "OMP_NUM_THREADS": str(t), "OPENBLAS_NUM_THREADS": str(t), "MKL_NUM_THREADS": str(t)}
        res = subprocess.run([sys.executable, __file__, "--child", str(t), "--rounds", str(args.rounds)], env=env,
                             check=True, capture_output=True, text=True)
        runs.append(json.loads(res.stdout))
    import numpy as np

    result = {"benchmark": "cpu_kernels", "python": platform.python_version(), "numpy": np.__version__,
              "machine": platform.machine(), "cpus": os.cpu_count(), "rounds": args.rounds, "runs": runs}
    for run in runs:
        print(f"\n{run['threads']} thread(s)")
        print(f"{'kernel':<48} {'C us':>10} {'NumPy us':>10} {'speedup':>8}")
        for case, r in run["kernels"].items():
            print(f"{case:<48} {r['c_us']:>10.1f} {r['numpy_us']:>10.1f} {r['speedup']:>8.2f}")
        for case, r in run["end_to_end"].items():
            print(f"{case:<60} C {r['c_ms']:.2f} ms  NumPy {r['numpy_ms']:.2f} ms  speedup {r['speedup']:.2f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
