"""Run every benchmark with JSON output into bench/results/ (``tox -e bench`` calls this); the comparison with
PyTorch also rewrites its section of docs/benchmarks.md and the plot."""

from __future__ import annotations

import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
BENCHMARKS = ["vs_pytorch", "core_overhead", "cpu_kernels", "meta_batching", "webgpu", "maml_memory", "distributed"]


def main() -> None:
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    for name in BENCHMARKS:
        print(f"== {name}")
        docs = ["--docs"] if name == "vs_pytorch" else []
        subprocess.run([sys.executable, str(HERE / f"{name}.py"), "--out", str(out / f"{name}.json"), *docs,
                        *sys.argv[1:]], check=True)


if __name__ == "__main__":
    main()
