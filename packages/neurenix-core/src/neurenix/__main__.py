"""``python -m neurenix``: show the installed backends, then fit a small network on each usable device.

    python -m neurenix             # backends + a 1-40-40-1 MLP fitted to sin(x) on every usable device
    python -m neurenix --list      # only the backend listing
    python -m neurenix --kernels   # the listing, and which backend serves each kernel of each usable device type
"""

from __future__ import annotations

import argparse
import textwrap
import time

import neurenix as nx


def print_backends() -> None:
    print(f"neurenix {nx.__version__}: installed backends (highest priority first per device type)")
    for status in sorted(nx.list_backends(), key=lambda s: (s.device_type, -s.priority)):
        print("  " + str(status))


def print_kernels(device_types=None) -> None:
    """For each usable device type, the kernels each backend serves; ``*`` marks a kernel that overrides
    the same kernel of a lower-priority backend (a plugin replacing core's cpu kernels shows here)."""
    from neurenix.backend import kernel_providers

    types = device_types or sorted({s.device_type for s in nx.list_backends() if s.available})
    for t in types:
        providers = kernel_providers(t)
        if not providers:
            print(f"\n{t}: cannot run here")
            continue
        print(f"\n{t}: {len(providers)} kernels")
        by_backend: dict = {}
        for name, offers in providers.items():
            by_backend.setdefault(offers[0], []).append(name + ("*" if len(offers) > 1 else ""))
        for backend, names in by_backend.items():
            print(textwrap.fill(", ".join(names), 110, initial_indent=f"  {backend:<17}", subsequent_indent=" " * 19))
    print("\n* overrides the same kernel of a lower-priority backend")


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


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m neurenix", description=__doc__.splitlines()[0])
    ap.add_argument("--list", action="store_true", help="only list the backends")
    ap.add_argument("--kernels", action="store_true", help="list the backends and which serves each kernel")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print_backends()
    if args.kernels:
        print_kernels()
    if args.list or args.kernels:
        return
    types = sorted({s.device_type for s in nx.list_backends() if s.available})
    print(f"\nfitting a 1-40-40-1 MLP to sin(x) on [-5, 5]: {args.steps} Adam steps, seed {args.seed}")
    for t in types:
        for i in range(nx.get_device_count(t)):
            device = f"{t}:{i}"
            first, last, secs = fit_sine(device, args.steps, args.seed)
            per_step = secs / args.steps * 1e3
            print(f"  {device:<10} MSE {first:.4f} -> {last:.5f} in {secs:.2f} s ({per_step:.2f} ms/step)")


if __name__ == "__main__":
    main()
