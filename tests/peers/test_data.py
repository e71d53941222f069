"""neurenix.utils.data builds the batches torch.utils.data does: the same structure (lists, dicts, named
tuples), dtypes and contents; shuffled passes hold the same samples (the orders differ: the generators do)."""

from __future__ import annotations

import collections

import numpy as np
import pytest

import neurenix as nx
from neurenix.utils import data as nxdata

Point = collections.namedtuple("Point", "x y")

SAMPLES = {
    "tensors": lambda lib: [lib.tensor([[float(i), 2.0 * i]]) for i in range(4)],
    "floats": lambda lib: [0.5 * i for i in range(4)],
    "ints": lambda lib: list(range(4)),
    "bools": lambda lib: [i % 2 == 0 for i in range(4)],
    "numpy": lambda lib: [np.full((2,), i, dtype=np.float32) for i in range(4)],
    "tuples": lambda lib: [(lib.tensor([float(i)]), i, "s") for i in range(4)],
    "dicts": lambda lib: [{"x": lib.tensor([float(i)]), "y": [i, 0.5]} for i in range(4)],
    "namedtuples": lambda lib: [Point(lib.tensor([i]), float(i)) for i in range(4)],
}


def _plain(value):
    """A batch as plain Python: its structure, with tensors as (dtype name, nested lists)."""
    if hasattr(value, "tolist") and hasattr(value, "dtype"):
        return str(value.dtype).rpartition(".")[2].replace("bool_", "bool"), value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value).__name__, [_plain(v) for v in value]
    return value


@pytest.mark.parametrize("kind", SAMPLES)
def test_default_collate_matches_torch(torch, kind):
    import torch.utils.data as tdata

    assert _plain(nxdata.default_collate(SAMPLES[kind](nx))) == _plain(tdata.default_collate(SAMPLES[kind](torch)))


def _datasets(torch, n=11):
    x = np.arange(n * 3, dtype=np.float64).reshape(n, 3)
    y = np.arange(n)
    return (nxdata.TensorDataset(nx.tensor(x), nx.tensor(y)),
            torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y)))


@pytest.mark.parametrize("batch_size, drop_last", [(1, False), (4, False), (4, True), (11, True), (20, False)])
def test_batches_in_order_match_torch(torch, batch_size, drop_last):
    nds, tds = _datasets(torch)
    ours = nxdata.DataLoader(nds, batch_size=batch_size, drop_last=drop_last)
    theirs = torch.utils.data.DataLoader(tds, batch_size=batch_size, drop_last=drop_last)
    assert len(ours) == len(theirs)
    assert [_plain(b) for b in ours] == [_plain(b) for b in theirs]


@pytest.mark.parametrize("batch_size, drop_last", [(3, False), (3, True)])
def test_shuffled_passes_hold_what_torch_s_do(torch, batch_size, drop_last):
    nds, tds = _datasets(torch)
    ours = nxdata.DataLoader(nds, batch_size=batch_size, shuffle=True, drop_last=drop_last,
                             generator=np.random.default_rng(0))
    theirs = torch.utils.data.DataLoader(tds, batch_size=batch_size, shuffle=True, drop_last=drop_last,
                                         generator=torch.Generator().manual_seed(0))

    def rows(loader):
        batches = list(loader)
        return [len(y) for _, y in batches], [(x.tolist(), y.item()) for xb, yb in batches for x, y in zip(xb, yb)]

    (our_sizes, our_rows), (their_sizes, their_rows) = rows(ours), rows(theirs)
    assert our_sizes == their_sizes
    if drop_last:
        everything = _all_rows(nds)
        assert len(our_rows) == len(their_rows) and all(r in everything for r in our_rows)
    else:
        assert sorted(our_rows) == sorted(their_rows)


def _all_rows(ds):
    return [(x.tolist(), y.item()) for x, y in (ds[i] for i in range(len(ds)))]


@pytest.mark.parametrize("lengths", [[0.3, 0.7], [0.33, 0.33, 0.34], [0.1, 0.2, 0.3, 0.4], [3, 8], [1.0]])
def test_random_split_sizes_match_torch(torch, lengths):
    nds, tds = _datasets(torch)
    ours = nxdata.random_split(nds, lengths, generator=np.random.default_rng(0))
    theirs = torch.utils.data.random_split(tds, lengths, generator=torch.Generator().manual_seed(0))
    assert [len(p) for p in ours] == [len(p) for p in theirs]
    assert sorted(i for p in ours for i in p.indices) == sorted(i for p in theirs for i in p.indices)
