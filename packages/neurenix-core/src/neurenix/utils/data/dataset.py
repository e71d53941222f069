"""Map-style datasets (``dataset[i]`` and ``len(dataset)``) and splitting them."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

import numpy as np

from ...arguments import integer, number
from ...creation import randperm
from ...random import numpy_generator
from ...tensor import Tensor


class Dataset:
    """A collection of samples read by index: subclasses define ``__getitem__`` (and ``__len__`` for a
    ``DataLoader`` to batch it). ``a + b`` concatenates two datasets."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class TensorDataset(Dataset):
    """Samples ``(t[i] for t in tensors)``: tensors that share their first dimension (inputs, targets)."""

    def __init__(self, *tensors: Tensor):
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset: argument {i} is a {type(t).__name__}, not a Tensor")
            if t.ndim == 0 or t.shape[0] != tensors[0].shape[0]:
                raise ValueError(f"TensorDataset: the tensors must share their first dimension; tensor {i} has shape "
                                 f"{t.shape}, tensor 0 {tensors[0].shape}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0] if self.tensors else 0


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, index):
        if isinstance(index, list):
            return [self.dataset[self.indices[i]] for i in index]
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset):
    """The samples of several datasets, one after another."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        self.cumulative_sizes = list(np.cumsum([len(d) for d in self.datasets]).tolist())

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int):
        index = integer(index, "index", "ConcatDataset")
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"ConcatDataset: index {index} is out of range for {len(self)} samples")
        which = bisect.bisect_right(self.cumulative_sizes, index)
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][index - start]


def random_split(dataset, lengths: Sequence, generator=None) -> list[Subset]:
    """Split ``dataset`` at random into ``Subset``s of the given ``lengths``: counts that add up to its size,
    or fractions that add up to 1 (sizes rounded down, the remainder handed out one by one from the first)."""
    n = len(dataset)
    sizes = _split_sizes(list(lengths), n)
    numpy_generator(generator, "random_split")  # (a TypeError naming it)
    order = randperm(n, generator=generator).numpy().tolist()
    out, start = [], 0
    for size in sizes:
        out.append(Subset(dataset, order[start:start + size]))
        start += size
    return out


def _split_sizes(lengths: list, n: int) -> list[int]:
    """Counts from ``lengths`` (counts or fractions) for a dataset of ``n`` samples."""
    fractions = lengths and all(isinstance(x, float) for x in lengths)
    if fractions:
        values = [number(x, "lengths", "random_split", minimum=0.0, maximum=1.0) for x in lengths]
        if not math.isclose(sum(values), 1.0) or sum(values) > 1.0 + 1e-12:
            raise ValueError(f"random_split: fractions must add up to 1, got {lengths} (sum {sum(values)})")
        sizes = [math.floor(n * v) for v in values]
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        return sizes
    sizes = [integer(x, "lengths", "random_split", minimum=0) for x in lengths]
    if sum(sizes) != n:
        raise ValueError(f"random_split: the lengths {sizes} add up to {sum(sizes)}, not to the dataset's size {n}")
    return sizes


__all__ = ["ConcatDataset", "Dataset", "Subset", "TensorDataset", "random_split"]
