"""Iterating over a dataset in batches, as PyTorch's ``DataLoader``."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

from ...arguments import boolean, integer
from ...creation import randperm
from ...random import numpy_generator
from .collate import default_collate


class DataLoader:
    """Batches of ``dataset`` (a map-style dataset: ``len`` and ``dataset[i]``).

    Each pass takes the samples in order, or in a fresh random order with ``shuffle=True`` (drawn from
    ``generator``, a ``neurenix.Generator`` or ``numpy.random.Generator``, or else from neurenix's generator,
    which ``manual_seed`` seeds), groups ``batch_size`` of them (the last batch smaller unless ``drop_last``) and
    makes each group into a batch with ``collate_fn`` (``default_collate``: stacked tensors).
    ``batch_size=None`` gives the samples one by one, uncollated. Samples are loaded in the calling process:
    ``num_workers``, ``pin_memory``, ``persistent_workers`` and ``prefetch_factor`` are accepted for PyTorch code
    and change nothing.
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool = False, num_workers: int = 0,
                 collate_fn: Callable | None = None, pin_memory: bool = False, drop_last: bool = False,
                 generator=None, persistent_workers: bool = False,
                 prefetch_factor: int | None = None):
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader: dataset must have __len__ and __getitem__, got {type(dataset).__name__}")
        numpy_generator(generator, "DataLoader")  # (checked now: a TypeError naming it)
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be callable, got {type(collate_fn).__name__}")
        self.dataset = dataset
        self.batch_size = None if batch_size is None else integer(batch_size, "batch_size", "DataLoader", minimum=1)
        self.shuffle = boolean(shuffle, "shuffle", "DataLoader")
        self.num_workers = integer(num_workers, "num_workers", "DataLoader", minimum=0)
        self.pin_memory = boolean(pin_memory, "pin_memory", "DataLoader")
        self.drop_last = boolean(drop_last, "drop_last", "DataLoader")
        self.collate_fn = collate_fn
        self.generator = generator

    def _order(self) -> list[int]:
        n = len(self.dataset)
        if not self.shuffle:
            return list(range(n))
        return randperm(n, generator=self.generator).numpy().tolist()

    def __iter__(self) -> Iterator:
        order = self._order()
        if self.batch_size is None:
            for i in order:
                yield self.dataset[i] if self.collate_fn is None else self.collate_fn(self.dataset[i])
            return
        collate = self.collate_fn or default_collate
        stop = len(self) * self.batch_size if self.drop_last else len(order)
        for start in range(0, stop, self.batch_size):
            yield collate([self.dataset[i] for i in order[start:start + self.batch_size]])

    def __len__(self) -> int:
        """The number of batches in a pass."""
        n = len(self.dataset)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)


__all__ = ["DataLoader"]
