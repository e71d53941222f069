"""Few-shot tasks from real data: class-disjoint splits, N-way K-shot and Meta-Dataset episode samplers, an
image-folder loader.

Few-shot learning is evaluated on classes never seen in meta-training, so a data set is first split by
class (``split_classes``); a ``TaskSampler`` then draws N-way K-shot tasks from one split: N of its
classes, K support and Q query examples of each, labels renumbered 0..N-1 in a random order per task.
An ``EpisodeSampler`` draws episodes whose ways and shots vary, as Meta-Dataset's do.
``rotate_classes`` multiplies the classes of a training split by rotating images (Omniglot's augmentation);
``load_image_folder`` reads a directory laid out as Omniglot is (``alphabet/character/*.png``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

import neurenix as nx

from . import checks
from .tasks import Task


def _rng(seed: int | None) -> np.random.Generator:
    seed = checks.seed("seed", seed)
    return nx.random.generator() if seed is None else np.random.default_rng(seed)


def _labelled(x, y, who: str) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``y`` as arrays, one label per row."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim < 1 or x.shape[:1] != y.shape or y.ndim != 1:
        raise ValueError(f"{who}: x {x.shape} and y {y.shape} must have one label per row")
    return x, y


def split_classes(x, y, sizes: tuple[int, ...], *, seed: int | None = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split labelled arrays into class-disjoint parts: ``sizes`` gives the number of classes of each part
    (for example (train, validation, test)), drawn from a seeded permutation of the classes present.
    Returns one ``(x, y)`` pair per part, labels unchanged."""
    x, y = _labelled(x, y, "split_classes")
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Iterable):
        raise TypeError(f"split_classes: sizes must be a sequence of class counts, got {sizes!r}")
    sizes = tuple(checks.count(f"sizes[{i}]", s) for i, s in enumerate(sizes))
    classes = np.unique(y)
    if sum(sizes) > len(classes):
        raise ValueError(f"split_classes: sizes {tuple(sizes)} ask for {sum(sizes)} classes, the data has "
                         f"{len(classes)}")
    order = _rng(seed).permutation(classes)
    parts, lo = [], 0
    for size in sizes:
        rows = np.isin(y, order[lo:lo + size])
        parts.append((x[rows], y[rows]))
        lo += size
    return parts


def rotate_classes(x, y, quarters=(1, 2, 3), *, skip: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Add each class of images rotated by 90 degrees times each of ``quarters`` as a new class, as
    few-shot papers augment Omniglot's training classes: more classes to meta-train on, same images.

    ``x`` is (rows, ..., height, width); rotated copies of class ``c`` get the label ``c + i * n`` for
    the i-th quarter and n = max(y) - min(y) + 1, so labels stay unique. ``skip`` maps a class to quarters
    left out for it (for example a 6 turned by 180 degrees is a 9: ``{6: (2,)}``). Use it on training
    splits only: rotated test classes would not be new classes. Returns the original rows followed
    by the rotated ones."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim < 3 or x.shape[:1] != y.shape or y.ndim != 1:
        raise ValueError(f"rotate_classes: x {x.shape} must be images (rows, ..., height, width) with one "
                         f"label per row in y {y.shape}")
    quarters = _quarters("quarters", quarters)
    skip = {c: _quarters(f"skip[{c!r}]", qs) for c, qs in _mapping("skip", skip).items()}
    if x.shape[-2] != x.shape[-1] and {1, 3} & set(quarters):
        raise ValueError(f"rotate_classes: images of {x.shape[-2]}x{x.shape[-1]} turned by 90 or 270 degrees "
                         f"change shape; pass square images or quarters=(2,)")
    n = int(y.max() - y.min()) + 1 if len(y) else 0
    xs, ys = [x], [y]
    for i, q in enumerate(quarters, 1):
        rows = ~np.isin(y, [c for c, qs in skip.items() if q in qs])
        xs.append(np.rot90(x[rows], q, axes=(-2, -1)))
        ys.append(y[rows] + i * n)
    return np.concatenate(xs), np.concatenate(ys)


def _quarters(name: str, quarters) -> tuple[int, ...]:
    if isinstance(quarters, (str, bytes)) or not isinstance(quarters, Iterable):
        raise TypeError(f"rotate_classes: {name} must be a sequence of quarter turns (1, 2 or 3), got {quarters!r}")
    quarters = tuple(quarters)
    if any(isinstance(q, bool) or q not in (1, 2, 3) for q in quarters):
        raise ValueError(f"rotate_classes: {name} must be 1, 2 or 3 (turns of 90 degrees), got {quarters}")
    return quarters


def _mapping(name: str, value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"rotate_classes: {name} must map classes to quarter turns, got {value!r}")
    return dict(value)


def _class_names(names, classes: np.ndarray, who: str) -> dict:
    """Each class's name for errors: ``names[c]`` for class index c (as ``load_image_folder`` gives them), or c."""
    if names is None:
        return {c: c for c in classes}
    if classes.dtype.kind not in "iu" or classes[0] < 0 or classes[-1] >= len(names):
        raise ValueError(f"{who}: class_names has {len(names)} names, so y must hold class indices 0 to "
                         f"{len(names) - 1}; it holds {classes[0]} to {classes[-1]}")
    return {c: names[int(c)] for c in classes}


class _ClassSampler:
    """What the task samplers share: labelled rows by class, their random generator, and tasks built from an
    episode's composition (which classes, how many support and query rows of each)."""

    def __init__(self, who: str, x, y, seed: int | None, one_hot: bool, device, dtype):
        self.x, self.y = _labelled(x, y, who)
        self.who, self.one_hot = who, checks.flag("one_hot", one_hot)
        self.device, self.dtype = device, checks.float_dtype("dtype", dtype)
        self.rng = _rng(seed) if seed is not None else None
        self.classes, self.counts = np.unique(self.y, return_counts=True)

    def _index(self, class_names, least: int, need: str) -> None:
        """Check that every class has ``least`` examples (``need`` says for what), naming the short ones, then
        index the rows of each class."""
        names = _class_names(class_names, self.classes, self.who)
        short = [f"{names[c]!s} ({n})" for c, n in zip(self.classes, self.counts) if n < least]
        if short:
            raise ValueError(f"{self.who}: {need} need {least} examples per class; class "
                             f"{', class '.join(short[:5])}{' ...' if len(short) > 5 else ''} "
                             f"{'has' if len(short) == 1 else 'have'} fewer")
        self.rows = [np.flatnonzero(self.y == c) for c in self.classes]

    def _generator(self) -> np.random.Generator:
        return self.rng or nx.random.generator()

    def _task(self, picked: list[np.ndarray], shots, queries: int) -> Task:
        """The task whose class i has the rows ``picked[i]``: the first ``shots`` (one count, or one per class)
        are support rows, the rest query rows; labels 0..ways-1 in the order of ``picked``."""
        shots = np.broadcast_to(shots, len(picked))
        support = np.concatenate([r[:k] for r, k in zip(picked, shots)])
        query = np.concatenate([r[k:] for r, k in zip(picked, shots)])
        labels = np.arange(len(picked))
        ys = [np.repeat(labels, n) for n in (shots, queries)]
        if self.one_hot:
            ys = [np.eye(len(picked))[v] for v in ys]
        return self._tensor(self.x[support]), self._label(ys[0]), self._tensor(self.x[query]), self._label(ys[1])

    def _tensor(self, a: np.ndarray) -> nx.Tensor:
        return nx.tensor(a, dtype=self.dtype, device=self.device)

    def _label(self, a: np.ndarray) -> nx.Tensor:
        return self._tensor(a) if self.one_hot else nx.tensor(a, dtype=nx.int64, device=self.device)


class TaskSampler(_ClassSampler):
    """Draws N-way K-shot Q-query classification tasks from labelled arrays ``x`` (rows, ...) and ``y`` (rows,).

    Each task picks ``ways`` distinct classes and, per class, ``shots`` support and ``queries`` query rows
    (distinct, without replacement); labels become 0..ways-1 in a random order, as int64 indices (or
    one-hot rows with ``one_hot=True``). Random draws come from ``seed``'s own generator, or from
    neurenix's (``neurenix.manual_seed``) when ``seed`` is None. ``class_names`` name classes in errors.
    """

    def __init__(self, x, y, ways: int, shots: int, queries: int, *, seed: int | None = None, one_hot: bool = False,
                 class_names=None, device=None, dtype=None):
        ways, shots, queries = checks.count("ways", ways, 2), checks.count("shots", shots, 1), \
            checks.count("queries", queries, 1)
        super().__init__("TaskSampler", x, y, seed, one_hot, device, dtype)
        self.ways, self.shots, self.queries = ways, shots, queries
        if len(self.classes) < ways:
            raise ValueError(f"TaskSampler: {ways}-way tasks need {ways} classes, the data has {len(self.classes)}")
        self._index(class_names, shots + queries, f"{shots}-shot {queries}-query tasks")

    def sample(self, num_tasks: int) -> list[Task]:
        """``num_tasks`` new tasks ``(support_x, support_y, query_x, query_y)``, support rows first by class."""
        num_tasks = checks.count("num_tasks", num_tasks)
        rng, n = self._generator(), self.shots + self.queries
        return [self._task([rng.choice(self.rows[c], n, replace=False)
                            for c in rng.choice(len(self.rows), self.ways, replace=False)], self.shots, self.queries)
                for _ in range(num_tasks)]


class EpisodeSampler(_ClassSampler):
    """Draws variable-way, variable-shot episodes as Meta-Dataset does (Triantafillou et al., 2020, "Meta-Dataset",
    Section 3.2 and Appendix; google-research/meta-dataset's ``data/sampling.py`` with its default
    ``EpisodeDescriptionConfig``), from labelled arrays ``x`` (rows, ...) and ``y`` (rows,). Each episode:

    1. ways: uniform in [``min_ways``, min(``max_ways``, classes in the data)]; the classes: uniform, distinct.
    2. query rows per class (the same for every class): min(``max_query_per_class``, floor(half the examples of
       the episode's smallest class)).
    3. support set size: min(``max_support``, sum over classes of ceil(beta * min(``max_support_contribution``,
       examples left after the query))), beta uniform in (0, 1]: at least one row per class.
    4. support rows per class: 1 + floor(share * (size - ways)), capped at the examples left, where the shares
       are proportional to exp(alpha_c) * examples of class c, alpha_c uniform in [``min_log_weight``,
       ``max_log_weight``]: the support set is imbalanced, loosely following class frequencies.

    The tasks are ``TaskSampler``'s: support rows grouped by class, labels 0..ways-1 in a random order (int64,
    or one-hot rows of width ways with ``one_hot=True``), rows distinct. ``seed``, ``class_names``,
    ``device`` and ``dtype`` are as there. Every class needs two examples (one support, one query).
    """

    def __init__(self, x, y, *, min_ways: int = 5, max_ways: int = 50, max_query_per_class: int = 10,
                 max_support: int = 500, max_support_contribution: int = 100,
                 min_log_weight: float = math.log(0.5), max_log_weight: float = math.log(2),
                 seed: int | None = None, one_hot: bool = False, class_names=None, device=None, dtype=None):
        self.min_ways = checks.count("min_ways", min_ways, 2)
        self.max_ways = checks.count("max_ways", max_ways, self.min_ways)
        self.max_query_per_class = checks.count("max_query_per_class", max_query_per_class, 1)
        self.max_support = checks.count("max_support", max_support, 1)
        self.max_support_contribution = checks.count("max_support_contribution", max_support_contribution, 1)
        self.min_log_weight = checks.finite("min_log_weight", min_log_weight)
        self.max_log_weight = checks.finite("max_log_weight", max_log_weight)
        if self.max_log_weight < self.min_log_weight:
            raise ValueError(f"EpisodeSampler: max_log_weight {max_log_weight!r} is below min_log_weight "
                             f"{min_log_weight!r}")
        super().__init__("EpisodeSampler", x, y, seed, one_hot, device, dtype)
        if len(self.classes) < self.min_ways:
            raise ValueError(f"EpisodeSampler: min_ways={self.min_ways} needs {self.min_ways} classes, the data has "
                             f"{len(self.classes)}")
        self.top_ways = min(self.max_ways, len(self.classes))  # the most ways an episode can have
        if self.max_support < self.top_ways:  # (Meta-Dataset fails the episode; we fail now)
            raise ValueError(f"EpisodeSampler: max_support={self.max_support} is below the {self.top_ways} ways an "
                             f"episode can have (min(max_ways, classes)), and each needs a support row")
        self._index(class_names, 2, "episodes (one support and one query row at least)")

    def sample(self, num_tasks: int) -> list[Task]:
        """``num_tasks`` new episodes ``(support_x, support_y, query_x, query_y)``, support rows first by class."""
        num_tasks = checks.count("num_tasks", num_tasks)
        rng = self._generator()
        return [self._episode(rng) for _ in range(num_tasks)]

    def _episode(self, rng: np.random.Generator) -> Task:
        ways = int(rng.integers(self.min_ways, self.top_ways + 1))
        chosen = rng.choice(len(self.rows), ways, replace=False)
        examples = self.counts[chosen]
        queries = min(self.max_query_per_class, int(examples.min()) // 2)
        shots = self._shots(examples, examples - queries, rng)
        return self._task([rng.choice(self.rows[c], k + queries, replace=False) for c, k in zip(chosen, shots)],
                          shots, queries)

    def _shots(self, examples: np.ndarray, left: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Support rows per class (steps 3 and 4) from the classes' examples, and those left after the query."""
        # floor(beta * c + 1) with beta uniform in [0, 1) is ceil(beta' * c) with beta' uniform in (0, 1]
        contributions = np.minimum(self.max_support_contribution, left)
        size = min(self.max_support, int(np.floor(rng.uniform() * contributions + 1).sum()))
        weights = examples * np.exp(rng.uniform(self.min_log_weight, self.max_log_weight, len(examples)))
        shots = np.floor(weights / weights.sum() * (size - len(examples))).astype(np.int64) + 1
        return np.minimum(shots, left)


def _size(size) -> tuple[int, int] | None:
    """None, or (height, width) of at least one pixel each."""
    if size is None:
        return None
    if isinstance(size, (str, bytes)) or not isinstance(size, Iterable) or len(tuple(size)) != 2:
        raise TypeError(f"load_image_folder: size must be (height, width) or None, got {size!r}")
    height, width = size
    return checks.count("size[0] (height)", height, 1), checks.count("size[1] (width)", width, 1)


def load_image_folder(root: str | os.PathLike, size: tuple[int, int] | None = None, pattern: str = "*.png"
                      ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Load images laid out as Omniglot is, ``root/alphabet/character/*.png``: one class per character
    directory. Returns ``(x, y, names)``: x float32 (images, 1, height, width) in [0, 1] (greyscale),
    y int64 class indices, names[c] = ``"alphabet/character"``. ``size=(height, width)`` resizes; without
    it all images must have one size. Needs Pillow (``pip install neurenix-meta[images]``)."""
    size = _size(size)
    if not isinstance(pattern, str):
        raise TypeError(f"load_image_folder: pattern must be a glob pattern string, got {pattern!r}")
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("load_image_folder needs Pillow: pip install 'neurenix-meta[images]'") from None
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"load_image_folder: {root} is not a directory")
    dirs = sorted(d for d in root.glob("*/*") if d.is_dir())
    images, labels, names, shapes = [], [], [], {}
    for c, d in enumerate(dirs):
        names.append(f"{d.parent.name}/{d.name}")
        files = sorted(d.glob(pattern))
        if not files:
            raise ValueError(f"load_image_folder: class {names[-1]} has no {pattern} images ({d})")
        for f in files:
            try:
                with Image.open(f) as im:
                    im = im.convert("L")
                    if size is not None:
                        im = im.resize((size[1], size[0]))
                    a = np.asarray(im, dtype=np.float32) / 255.0
            except OSError as e:
                raise ValueError(f"load_image_folder: cannot read {f} ({e})") from None
            shapes.setdefault(a.shape, f)
            images.append(a)
            labels.append(c)
    if not images:
        raise ValueError(f"load_image_folder: no {pattern} images in {root}/<alphabet>/<character>/")
    if len(shapes) > 1:
        (s1, f1), (s2, f2) = list(shapes.items())[:2]
        raise ValueError(f"load_image_folder: images differ in size ({f1} is {s1}, {f2} is {s2}); pass size=(h, w)")
    return np.stack(images)[:, None], np.asarray(labels, dtype=np.int64), names
