"""Datasets and batching, as PyTorch's ``torch.utils.data``: ``Dataset`` / ``TensorDataset`` / ``Subset`` /
``ConcatDataset``, ``random_split``, ``DataLoader`` and its ``default_collate``.

Shuffles draw from neurenix's generator (``neurenix.manual_seed``) unless a ``generator`` (a
``neurenix.Generator`` or ``numpy.random.Generator``) is given. Everything runs in the calling process.
"""

from .collate import default_collate
from .dataloader import DataLoader
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split

__all__ = ["ConcatDataset", "DataLoader", "Dataset", "Subset", "TensorDataset", "default_collate", "random_split"]
