"""What is installed, as text for people: the backend listing of ``python -m neurenix`` and ``neurenix devices``,
with, on request, which backend serves each kernel."""

from __future__ import annotations

import textwrap

from .registry import REGISTRY, kernel_providers, list_backends


def describe(kernels: bool = False) -> str:
    """One line per installed backend (usable or not, and why), highest priority first per device type; with
    ``kernels``, then for each usable device type the kernels each backend serves, ``*`` marking a kernel that
    overrides the same kernel of a lower-priority backend."""
    from .. import __version__

    statuses = sorted(list_backends(), key=lambda s: (s.device_type, -s.priority))
    lines = [f"neurenix {__version__}: installed backends (highest priority first per device type)"]
    lines += ["  " + str(s) for s in statuses]
    lines += ["", auto_line()]
    if kernels:
        for t in sorted({s.device_type for s in statuses if s.available}):
            lines += ["", *_kernel_lines(t)]
        lines += ["", "* overrides the same kernel of a lower-priority backend"]
    return "\n".join(lines)


def auto_line() -> str:
    """Which device ``device="auto"`` picks, and the ranking it picks from."""
    ranking = REGISTRY.ranking()
    pick = ranking[0][0] if ranking and ranking[0][1] > 0 else "cpu"
    ranked = ", ".join(f"{name} {rank} ({backend})" for name, rank, backend in ranking)
    return (f'device="auto" picks {pick}, the usable device whose backend prefers it most (preference: '
            f'{ranked}; 0 is never picked)')


def _kernel_lines(device_type: str) -> list[str]:
    providers = kernel_providers(device_type)
    if not providers:
        return [f"{device_type}: cannot run here"]
    by_backend: dict = {}
    for name, offers in providers.items():
        by_backend.setdefault(offers[0], []).append(name + ("*" if len(offers) > 1 else ""))
    lines = [f"{device_type}: {len(providers)} kernels"]
    for backend, names in by_backend.items():
        lines.append(textwrap.fill(", ".join(names), 110, initial_indent=f"  {backend:<17}",
                                   subsequent_indent=" " * 19))
    return lines
