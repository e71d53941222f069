"""Per-op overhead of neurenix vs PyTorch on the small tensors meta-learning runs on.

Times elementwise ops and matmul on (10, 40) float32 tensors, with and without autograd recording,
and forward+backward of a 1-40-40-1 MLP on 10 points. Both frameworks run in this one process with
one thread, interleaved round by round (the machine is shared and noisy), and each figure is the
median over rounds. Writes JSON (``--out``) and prints a table of ratios neurenix / PyTorch.

    python bench/core_overhead.py --out bench/results/core_overhead.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np

import neurenix as nx

try:
    import torch
    torch.set_num_threads(1)
except ImportError:  # the comparison is optional; neurenix's own numbers are still useful
    torch = None


def per_call_us(fn, number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number * 1e6


def workloads(fw):
    """name -> (setup-free callable, grad mode) for framework module ``fw`` (neurenix or torch)."""
    rng = np.random.default_rng(0)
    a_np, b_np = rng.standard_normal((10, 40), dtype=np.float32), rng.standard_normal((10, 40), dtype=np.float32)
    w_np = rng.standard_normal((40, 40), dtype=np.float32)
    t = (lambda x, rg=False: nx.tensor(x, requires_grad=rg)) if fw is nx else \
        (lambda x, rg=False: torch.tensor(x, requires_grad=rg))
    a, b, w = t(a_np), t(b_np), t(w_np)
    ag, wg = t(a_np, True), t(w_np, True)
    relu = nx.relu if fw is nx else torch.relu
    ops = {
        "add": (lambda: a + b, lambda: ag + b),
        "mul": (lambda: a * b, lambda: ag * b),
        "mul_scalar": (lambda: a * 2.0, lambda: ag * 2.0),
        "relu": (lambda: relu(a), lambda: relu(ag)),
        "exp": (lambda: a.exp(), lambda: ag.exp()),
        "sum": (lambda: a.sum(), lambda: ag.sum()),
        "matmul": (lambda: a @ w, lambda: ag @ wg),
    }
    out = {}
    for name, (plain, recorded) in ops.items():
        out[f"{name} no-grad"] = (plain, False)
        out[f"{name} recording"] = (recorded, True)
    out["mlp 1-40-40-1 fwd+bwd"] = (mlp_step(fw), True)
    return out


def mlp_step(fw):
    if fw is nx:
        nx.manual_seed(0)
        nn, mse = nx.nn, nx.nn.functional.mse_loss
        x, y = nx.randn(10, 1), nx.randn(10, 1)
    else:
        torch.manual_seed(0)
        nn, mse = torch.nn, torch.nn.functional.mse_loss
        x, y = torch.randn(10, 1), torch.randn(10, 1)
    model = nn.Sequential(nn.Linear(1, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(), nn.Linear(40, 1))

    def step():
        for p in model.parameters():
            p.grad = None
        mse(model(x), y).backward()
    return step


def run(rounds: int, number: int) -> dict:
    frameworks = {"neurenix": nx} | ({"torch": torch} if torch is not None else {})
    loads = {name: workloads(fw) for name, fw in frameworks.items()}
    grad_ctx = {"neurenix": (nx.no_grad, nx.enable_grad)}
    if torch is not None:
        grad_ctx["torch"] = (torch.no_grad, torch.enable_grad)
    results = {}
    for wl in loads["neurenix"]:
        samples = {name: [] for name in frameworks}
        n = max(number // 20, 50) if "mlp" in wl else number
        for _ in range(rounds):
            for name in frameworks:  # interleaved: both see the same machine state
                fn, recording = loads[name][wl]
                with grad_ctx[name][1 if recording else 0]():
                    fn()
                    samples[name].append(per_call_us(fn, n))
        row = {f"{name}_us": statistics.median(s) for name, s in samples.items()}
        if torch is not None:
            row["ratio"] = row["neurenix_us"] / row["torch_us"]
        results[wl] = row
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--number", type=int, default=2000, help="calls per timing sample")
    ap.add_argument("--out", default=None, help="JSON file to write")
    args = ap.parse_args()
    results = run(args.rounds, args.number)
    report = {
        "benchmark": "core_overhead",
        "threads": 1,
        "rounds": args.rounds,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "torch": torch.__version__ if torch is not None else None,
        "neurenix": nx.__version__,
        "machine": platform.machine(),
        "results": results,
    }
    print(f"{'workload':<26}{'neurenix us':>12}{'torch us':>10}{'ratio':>8}")
    for name, r in results.items():
        print(f"{name:<26}{r['neurenix_us']:>12.2f}{r.get('torch_us', float('nan')):>10.2f}"
              f"{r.get('ratio', float('nan')):>8.2f}")
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
