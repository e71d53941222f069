"""Per-op cost of the GPU host layer on an emulated CUDA device (no GPU needed), optionally against another tree.

For each workload (small float32 tensors, shapes seen before, as in a training loop):

- ``frames``: Python frames ("call" events of sys.setprofile) from the op's entry into neurenix (the
  Tensor operator or function) through the stand-in's cuLaunchKernel, as the CUDA backend's
  tests/test_per_op_path.py counts them for ``a + b``;
- ``us``: wall time per op, with the emulator running the kernel on the CPU (its fibers dominate);
- ``host_us``: the same with the emulator's launch returning at once: the Python path from the tensor op to
  the driver call (and the result's wrapping), which is what a real GPU would see as launch overhead.

    python bench/gpu_per_op.py --out bench/results/gpu_per_op.json
    git archive <commit> packages | tar -x -C /tmp/base     # an earlier tree, before neurenix-gpu too
    python bench/gpu_per_op.py --base /tmp/base --out bench/results/gpu_per_op.json
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import timeit

HERE = pathlib.Path(__file__).resolve().parent
PACKAGES = ("neurenix-core", "neurenix-gpu", "neurenix-backend-cuda")


def emulated_cuda(tree: pathlib.Path):
    """(a context that serves an emulated CUDA backend as device type ``cuda_bench``, the emulator, the
    stand-in's cuLaunchKernel, what the emulator's launch returns on success) in ``tree``'s layout: this one
    (neurenix-gpu; the stand-ins in the CUDA backend's tests) or the one before neurenix-gpu existed."""
    from neurenix_backend_cuda.cuda import CudaDriver
    from neurenix_backend_cuda.plugin import CudaBackend
    if (tree / "packages" / "neurenix-gpu").is_dir():
        sys.path.insert(0, str(tree / "packages" / "neurenix-backend-cuda"))
        from neurenix_gpu.testing import serving
        from neurenix_gpu.testing.emulator import Emulator
        from tests.stand_ins import FakeCuda, fake_nvrtc
        success = True
    else:
        from neurenix_backend_cuda.emulator import Emulator, serving
        from neurenix_backend_cuda.emulator.vendor import FakeCuda, FakeNvrtc
        fake_nvrtc, success = FakeNvrtc, 0
    emulator = Emulator()
    backend = CudaBackend(lambda: CudaDriver(FakeCuda(emulator), fake_nvrtc(emulator)), "cuda_bench", "bench")
    return serving(backend, "cuda_bench"), emulator, FakeCuda.cuLaunchKernel.__code__, success


def workloads(device: str) -> dict:
    import numpy as np

    import neurenix as nx
    rng = np.random.default_rng(0)
    t = {name: nx.tensor(rng.standard_normal(shape).astype(np.float32), device=device)
         for name, shape in (("a", (4, 3)), ("b", (4, 3)), ("row", (3,)), ("m", (3, 4)))}
    a, b, row, m = t["a"], t["b"], t["row"], t["m"]
    return {"a + b": lambda: a + b, "a + row (broadcast)": lambda: a + row, "a * 2.0": lambda: a * 2.0,
            "a.exp()": lambda: a.exp(), "a.sum(dim=1)": lambda: a.sum(dim=1), "a @ m": lambda: a @ m}


def frames(fn, stop) -> int:
    """Python frames entered while ``fn()`` runs, after ``fn``'s own, up to and including ``stop``'s code."""
    count, state = [0], {"on": None}

    def profile(frame, event, arg):
        if event != "call" or state["on"] is False:
            return
        if state["on"] is None:  # fn's own frame
            state["on"] = True
            return
        count[0] += 1
        if frame.f_code is stop:
            state["on"] = False
    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count[0]


def per_op_us(fn, number: int, rounds: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=rounds)) / number * 1e6


def measure(tree: pathlib.Path, rounds: int) -> dict:
    """Every workload's frames, us and host_us, in this process (``tree``'s packages first on sys.path)."""
    serving, emulator, launch, success = emulated_cuda(tree)
    results = {}
    with serving:
        for name, fn in workloads("cuda_bench").items():
            fn()  # plans made, kernels compiled
            results[name] = {"frames": frames(fn, launch), "us": per_op_us(fn, 200, rounds)}
        emulator.launch = lambda *args: success  # the kernels no longer run: the host path alone
        for name, fn in workloads("cuda_bench").items():
            fn()
            results[name]["host_us"] = per_op_us(fn, 2000, rounds)
    return results


def run(tree: pathlib.Path, rounds: int) -> dict:
    """:func:`measure` in a fresh process with ``tree``'s packages first on the path."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run.json")
        path = os.pathsep.join(str(tree / "packages" / p / "src") for p in PACKAGES)
        env = dict(os.environ, PYTHONPATH=path, PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1",
                   NEURENIX_KERNEL_CACHE=os.path.join(tmp, "kernels"))
        subprocess.run([sys.executable, __file__, "--measure", str(tree), "--rounds", str(rounds), "--out", out],
                       env=env, check=True)
        with open(out) as f:
            return json.load(f)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", help="another tree to compare with (a checkout or an extracted commit)")
    ap.add_argument("--base-label", help="what the base tree is, for the report (a commit, say)")
    ap.add_argument("--runs", type=int, default=3, help="processes per tree (alternated); the fastest counts")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", help="JSON file to write")
    ap.add_argument("--measure", help=argparse.SUPPRESS)  # the child process: measure this tree
    args = ap.parse_args()
    if args.measure:
        with open(args.out, "w") as f:
            json.dump(measure(pathlib.Path(args.measure), args.rounds), f)
        return
    trees = {"this": HERE.parent, **({"base": pathlib.Path(args.base).resolve()} if args.base else {})}
    runs = {name: [] for name in trees}
    for _ in range(args.runs):
        for name, tree in trees.items():
            runs[name].append(run(tree, args.rounds))
    results = {name: {wl: {"frames": rs[0][wl]["frames"], "us": min(r[wl]["us"] for r in rs),
                           "host_us": min(r[wl]["host_us"] for r in rs)} for wl in rs[0]}
               for name, rs in runs.items()}
    print(f"{'workload':<22}" + "".join(f"{f'{n} {c}':>16}" for n in trees for c in ("frames", "us", "host us")))
    for wl in results["this"]:
        print(f"{wl:<22}" + "".join(f"{results[n][wl][c]:>16.1f}" for n in trees for c in ("frames", "us", "host_us")))
    if args.out:
        report = {"benchmark": "gpu_per_op", "device": "emulated CUDA (host CPU)", "python": sys.version.split()[0],
                  "trees": {n: str(t) for n, t in trees.items()}, "runs": args.runs, "results": results}
        if args.base_label:
            report["trees"]["base"] = args.base_label
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
