"""Recurrent layers against PyTorch 2.13 (CPU): forward plus backward of nn.LSTM / nn.GRU, one thread.

Both frameworks run in one process on the same weights and inputs (their outputs are checked to agree first),
interleaved round by round, medians over rounds; the ratio is neurenix's time over PyTorch's.

    python bench/rnn.py --out bench/results/rnn.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch

import neurenix as nx

# name: (kind, input_size, hidden_size, num_layers, sequence length, batch)
CONFIGS = {
    "lstm-16-64-L50-N16": ("LSTM", 16, 64, 1, 50, 16),
    "lstm-32-128x2-L200-N64": ("LSTM", 32, 128, 2, 200, 64),
    "gru-16-64-L50-N16": ("GRU", 16, 64, 1, 50, 16),
}


def _pair(kind: str, n_in: int, hidden: int, layers: int):
    theirs = getattr(torch.nn, kind)(n_in, hidden, layers)
    ours = getattr(nx.nn, kind)(n_in, hidden, layers)
    ours.load_state_dict({k: nx.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    return ours, theirs


def _step(lib, model, x: np.ndarray) -> float:
    """One forward and backward pass (the input's gradient and the parameters'), in seconds."""
    inp = lib.tensor(x, requires_grad=True)
    start = time.perf_counter()
    out, _ = model(inp)
    out.sum().backward()
    return time.perf_counter() - start


def measure(name: str, rounds: int) -> dict:
    kind, n_in, hidden, layers, length, batch = CONFIGS[name]
    ours, theirs = _pair(kind, n_in, hidden, layers)
    x = np.random.default_rng(0).standard_normal((length, batch, n_in)).astype(np.float32)
    got, want = ours(nx.tensor(x))[0].detach().numpy(), theirs(torch.tensor(x))[0].detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    _step(nx, ours, x), _step(torch, theirs, x)  # warm-up
    times = {"neurenix": [], "pytorch": []}
    for _ in range(rounds):
        times["neurenix"].append(_step(nx, ours, x))
        times["pytorch"].append(_step(torch, theirs, x))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"neurenix_s": med["neurenix"], "pytorch_s": med["pytorch"], "ratio": med["neurenix"] / med["pytorch"],
            "rounds": rounds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--out", default=None, help="JSON file to write")
    args = ap.parse_args()
    torch.set_num_threads(1)
    nx.set_num_threads(1)
    results = {name: measure(name, args.rounds) for name in CONFIGS}
    for name, r in results.items():
        print(f"{name:26s} neurenix {r['neurenix_s'] * 1e3:8.1f} ms  pytorch {r['pytorch_s'] * 1e3:7.1f} ms  "
              f"ratio {r['ratio']:5.1f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"machine": platform.processor() or platform.machine(), "threads": 1, "results": results},
                      f, indent=1)


if __name__ == "__main__":
    main()
