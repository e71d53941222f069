"""Synthetic task generators: sine regression (the MAML paper's) and Gaussian-cluster classification.

Both draw from neurenix's random generator (``neurenix.manual_seed`` makes them reproducible) unless
``seed`` is given, and put tensors on ``device`` (default: the default device) as ``dtype`` (float32).
Each task's samples are split in two: the first half (rounded down) is the support set, the rest the
query set; for classification the split is per class, so both sets hold every class.
"""

from __future__ import annotations

import numpy as np

import neurenix as nx

from . import checks
from .tasks import Task

MAX_TASK_ELEMENTS = 1 << 28  # 1 GiB of float32 per task: far past any few-shot task, short of a MemoryError


def _rng(seed: int | None) -> np.random.Generator:
    seed = checks.seed("seed", seed)
    return nx.random.generator() if seed is None else np.random.default_rng(seed)


def _check_size(generator: str, rows: int, width: int, **arguments: int) -> None:
    """Refuse tasks too large to build, before NumPy fails (or the machine swaps) allocating them."""
    if rows * width > MAX_TASK_ELEMENTS:
        given = ", ".join(f"{k}={v}" for k, v in arguments.items())
        raise ValueError(f"{generator}: {given} make tasks of {rows} rows of {width} values each, more than the "
                         f"{MAX_TASK_ELEMENTS} elements one task may hold")


def _check_counts(**counts: tuple[int, int]) -> None:
    for name, (value, least) in counts.items():
        checks.count(name, value, least)


def generate_regression_tasks(num_tasks: int, num_samples_per_task: int, input_dim: int = 1, *,
                              seed: int | None = None, device=None, dtype=None) -> list[Task]:
    """Sine-wave regression tasks, as in the MAML paper.

    Each task draws an amplitude A ~ U[0.1, 5.0] and a phase per input dimension phi_j ~ U[0, pi]; inputs
    are x ~ U[-5, 5]^input_dim and targets y = A * mean_j sin(x_j - phi_j), of shape (rows, 1) (for one
    input dimension, y = A sin(x - phi)). ``num_samples_per_task`` rows are split into support and query.
    """
    _check_counts(num_tasks=(num_tasks, 1), num_samples_per_task=(num_samples_per_task, 2), input_dim=(input_dim, 1))
    _check_size("generate_regression_tasks", num_samples_per_task, input_dim + 1,
                num_samples_per_task=num_samples_per_task, input_dim=input_dim)
    rng, dtype = _rng(seed), checks.float_dtype("dtype", dtype)
    n, k = num_samples_per_task, num_samples_per_task // 2
    # all tasks' draws at once (a per-task loop costed more than the meta-step it feeds)
    amplitude = rng.uniform(0.1, 5.0, size=(num_tasks, 1, 1))
    phase = rng.uniform(0.0, np.pi, size=(num_tasks, 1, input_dim))
    x = rng.uniform(-5.0, 5.0, size=(num_tasks, n, input_dim))
    y = amplitude * np.sin(x - phase).mean(axis=2, keepdims=True)
    x, y = x.astype(dtype.np), y.astype(dtype.np)  # (fresh arrays: each task's tensors are views of them)
    tasks = [tuple(nx.from_numpy(a, device) for a in (x[i, :k], y[i, :k], x[i, k:], y[i, k:]))
             for i in range(num_tasks)]
    return tasks


def generate_classification_tasks(num_tasks: int, num_classes: int = 5, num_samples_per_class: int = 10,
                                  input_dim: int = 20, *, seed: int | None = None, device=None,
                                  dtype=None) -> list[Task]:
    """N-way classification tasks of Gaussian clusters, labels as one-hot rows (rows, num_classes).

    All tasks of one call share a random rotation of the input space and an informative subspace of
    ``max(1, input_dim // 4)`` dimensions: each task draws its class means there (standard deviation 3),
    and samples add noise of standard deviation 1 inside the subspace and 2 outside it. So tasks differ
    but share structure: an embedding that learns the subspace classifies new tasks from few shots
    better than the raw inputs do. Per class, ``num_samples_per_class // 2`` samples go to the support
    set and the rest to the query set; rows are shuffled within each set.
    """
    _check_counts(num_tasks=(num_tasks, 1), num_classes=(num_classes, 2),
                  num_samples_per_class=(num_samples_per_class, 2), input_dim=(input_dim, 1))
    _check_size("generate_classification_tasks", num_classes * num_samples_per_class, num_classes + input_dim,
                num_classes=num_classes, num_samples_per_class=num_samples_per_class, input_dim=input_dim)
    rng, dtype = _rng(seed), checks.float_dtype("dtype", dtype)
    informative = max(1, input_dim // 4)
    rotation, _ = np.linalg.qr(rng.standard_normal((input_dim, input_dim)))
    noise_std = np.where(np.arange(input_dim) < informative, 1.0, 2.0)
    k = num_samples_per_class // 2
    labels = np.repeat(np.arange(num_classes), num_samples_per_class)
    one_hot = np.eye(num_classes)[labels]
    first = np.tile(np.arange(num_samples_per_class) < k, num_classes)  # support rows of each class
    tasks = []
    for _ in range(num_tasks):
        means = np.zeros((num_classes, input_dim))
        means[:, :informative] = 3.0 * rng.standard_normal((num_classes, informative))
        z = means[labels] + noise_std * rng.standard_normal((labels.size, input_dim))
        x = z @ rotation.T
        support, query = rng.permutation(np.flatnonzero(first)), rng.permutation(np.flatnonzero(~first))
        tasks.append(tuple(nx.tensor(a, dtype=dtype, device=device)
                           for a in (x[support], one_hot[support], x[query], one_hot[query])))
    return tasks
