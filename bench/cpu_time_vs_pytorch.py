"""Per-step CPU time (``time.process_time``) of neurenix and PyTorch on issue 7's workloads, one thread each,
implementations interleaved step by step: on a shared, loaded machine, wall-clock medians (vs_pytorch.py) move
by 30% from run to run, CPU time of a one-thread process much less. Run with OMP_NUM_THREADS=1
OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 set (the libraries read them at load).

    python bench/cpu_time_vs_pytorch.py 9 protonet_conv4_train protonet_conv4_infer
"""

from __future__ import annotations

import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import torch
from peers import ours, pytorch
from peers.workloads import WORKLOADS, data, initial_weights

import neurenix


def main(rounds: int, names: list[str]) -> None:
    neurenix.set_num_threads(1)
    torch.set_num_threads(1)
    for name in names:
        w = WORKLOADS[name]
        runners = {"neurenix": ours.build(w, data(w), initial_weights(w)),
                   "pytorch": pytorch.build_loop(w, data(w), initial_weights(w))}
        times: dict[str, list[float]] = {k: [] for k in runners}
        for r in runners.values():  # warm-up: compilation, caches
            r.step(), r.step()
        for _ in range(rounds):
            for k, r in runners.items():
                t = time.process_time()
                r.step()
                times[k].append(time.process_time() - t)
        ours_ms, peer_ms = (statistics.median(times[k]) * 1e3 for k in ("neurenix", "pytorch"))
        print(f"{name}: neurenix {ours_ms:.1f} ms, pytorch {peer_ms:.1f} ms, ratio {ours_ms / peer_ms:.3f}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
