"""Putting samples together into a batch, as PyTorch's ``default_collate``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ... import dtypes
from ...ops.joining import stack
from ...tensor import Tensor, tensor


def default_collate(batch: list):
    """A batch from a list of samples of one structure: tensors and NumPy arrays are stacked along a new first
    dimension, Python floats become a float64 tensor and ints an int64 one, strings are left as they come, and dicts,
    named tuples and sequences are collated field by field (a tuple, such as a ``TensorDataset`` sample,
    gives a list)."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack(batch, 0)
    if isinstance(elem, (np.ndarray, np.generic)) and elem.dtype.kind in "biuf":
        return stack([tensor(np.asarray(b)) for b in batch], 0)
    if isinstance(elem, float):
        return tensor(batch, dtype=dtypes.float64)
    if isinstance(elem, int):
        return tensor(batch)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, Mapping):
        fields = {key: default_collate([b[key] for b in batch]) for key in elem}
        return fields if type(elem) is dict else type(elem)(fields)
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # a named tuple
        return type(elem)(*(default_collate(field) for field in zip(*batch)))
    if isinstance(elem, Sequence):
        if any(len(b) != len(elem) for b in batch):
            raise RuntimeError("default_collate: each element in list of batch should be of equal size, got "
                               f"lengths {sorted({len(b) for b in batch})}")
        return [default_collate(field) for field in zip(*batch)]
    raise TypeError(f"default_collate: batch must contain tensors, NumPy arrays, numbers, dicts or lists; found "
                    f"{type(elem).__name__}")


__all__ = ["default_collate"]
