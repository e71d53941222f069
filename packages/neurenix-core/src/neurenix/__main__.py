"""``python -m neurenix``: show the installed backends, then fit a small network on each usable device.

    python -m neurenix             # backends + a 1-40-40-1 MLP fitted to sin(x) on every usable device
    python -m neurenix --list      # only the backend listing
    python -m neurenix --kernels   # the listing, and which backend serves each kernel of each usable device type
"""

from __future__ import annotations

import argparse
import sys
import time

import neurenix as nx
from neurenix.backend import describe
from neurenix.errors import BackendError


def fit_sine(device: str, steps: int, seed: int) -> tuple[float, float, float]:
    """Fit a 1-40-40-1 MLP to sin(x) on [-5, 5] with Adam; return (first loss, last loss, seconds)."""
    nx.manual_seed(seed)
    model = nx.nn.Sequential(nx.nn.Linear(1, 40), nx.nn.ReLU(), nx.nn.Linear(40, 40), nx.nn.ReLU(),
                             nx.nn.Linear(40, 1)).to(device)
    opt = nx.optim.Adam(model.parameters(), lr=0.01)
    x = nx.linspace(-5, 5, 100, device=device).reshape(100, 1)
    y = x.sin()
    start = time.perf_counter()
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = nx.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses[0], losses[-1], time.perf_counter() - start


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m neurenix", description=__doc__.splitlines()[0])
    ap.add_argument("--list", action="store_true", help="only list the backends")
    ap.add_argument("--kernels", action="store_true", help="list the backends and which serves each kernel")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        print(describe(kernels=args.kernels))
    except BackendError as e:  # NEURENIX_REQUIRE_BACKENDS names one that cannot run: the listing says the rest
        print(describe(kernels=args.kernels))
        print(f"python -m neurenix: error: {e}", file=sys.stderr)
        return 1
    if args.list or args.kernels:
        return 0
    types = sorted({s.device_type for s in nx.list_backends() if s.available})
    print(f"\nfitting a 1-40-40-1 MLP to sin(x) on [-5, 5]: {args.steps} Adam steps, seed {args.seed}")
    for t in types:
        for i in range(nx.get_device_count(t)):
            device = f"{t}:{i}"
            first, last, secs = fit_sine(device, args.steps, args.seed)
            per_step = secs / args.steps * 1e3
            print(f"  {device:<10} MSE {first:.4f} -> {last:.5f} in {secs:.2f} s ({per_step:.2f} ms/step)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
