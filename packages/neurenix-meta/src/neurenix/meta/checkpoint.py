"""Checkpoints in the safetensors format: modules, optimizers and meta-learners, written atomically.

The format: 8 bytes (little-endian) giving the header's length N, a JSON header of N bytes mapping each
tensor's name to ``{"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}`` (byte offsets into the
data that follows) plus an optional ``"__metadata__"`` map of strings, then the raw little-endian data.
Reading a file decodes JSON and copies bytes, so an untrusted checkpoint cannot run code (pickle could).
The reader and writer are written here with NumPy and json (the format is that small), so checkpoints
need no further dependency; the tests check the files against the ``safetensors`` package both ways.

Layout of a neurenix checkpoint: the module's ``state_dict()`` under its own names (so the file is a
plain safetensors state dict to other tools), the optimizer's state tensors as ``optimizer/<index>/<key>``,
and in ``__metadata__["neurenix"]`` a JSON document: the module's class, the optimizer's class, parameter
groups and non-tensor state (step counts), and the caller's metadata (``meta_learn`` keeps its epoch,
history and random state there).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

import neurenix as nx
from neurenix import Tensor
from neurenix.nn import Module
from neurenix.optim import Optimizer

log = logging.getLogger(__name__)

PathLike = str | os.PathLike
DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "|i1",
          "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "|u1", "BOOL": "|b1"}
CODES = {np.dtype(v): k for k, v in DTYPES.items()}
FORMAT = "neurenix-checkpoint/1"
OPTIMIZER = "optimizer/"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read (corrupt, truncated, not safetensors) or does not fit the model."""


# -- the file format ---------------------------------------------------------------------------------
def write_safetensors(path: PathLike, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None
                      ) -> None:
    """Write ``tensors`` (NumPy arrays by name) and string ``metadata`` as a safetensors file, atomically."""
    header: dict[str, Any] = {"__metadata__": dict(metadata)} if metadata else {}
    arrays, offset = [], 0
    for name, a in tensors.items():
        a = np.asarray(a)
        code = CODES.get(a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype)
        if code is None:
            raise TypeError(f"write_safetensors: tensor {name!r} has dtype {a.dtype}, which safetensors cannot hold")
        a = np.asarray(a, dtype=DTYPES[code])  # tobytes() writes C order, whatever the strides
        header[name] = {"dtype": code, "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        arrays.append(a)
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as the reference writer does
    atomic_write(path, [len(text).to_bytes(8, "little"), text, *(a.tobytes() for a in arrays)])


def atomic_write(path: PathLike, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to a temporary file beside ``path``, flush it to disk, then rename it over ``path``:
    readers see the old file or the new one, never a partial one, whatever happens mid-write."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (not possible on every platform)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def read_safetensors(path: PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a safetensors file: (arrays by name, metadata). A CheckpointError says what is wrong with a bad file."""
    data = Path(path).read_bytes()

    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"{path} is not a valid safetensors file: {why}")

    if len(data) < 8:
        raise bad(f"it has {len(data)} bytes, fewer than the 8 of the header length (truncated?)")
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8:
        raise bad(f"the header length says {n} bytes but only {len(data) - 8} follow (truncated?)")
    try:
        header = json.loads(data[8:8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad(f"the header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise bad(f"the header is a JSON {type(header).__name__}, not an object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise bad("__metadata__ must map strings to strings")
    body, tensors = memoryview(data)[8 + n:], {}
    for name, info in header.items():
        try:
            dtype, shape, (begin, end) = np.dtype(DTYPES[info["dtype"]]), tuple(info["shape"]), info["data_offsets"]
            count = int(np.prod(shape, dtype=np.int64))
            ok = all(isinstance(s, int) and s >= 0 for s in (*shape, begin, end))
            ok = ok and end - begin == count * dtype.itemsize
        except (KeyError, TypeError, ValueError):
            raise bad(f"tensor {name!r} has a malformed entry {info!r}") from None
        if not ok:
            raise bad(f"tensor {name!r}: offsets {[begin, end]} do not hold shape {list(shape)} of {info['dtype']}")
        if end > len(body):
            raise bad(f"tensor {name!r} ends at data byte {end} but the file holds {len(body)} (truncated?)")
        tensors[name] = np.frombuffer(body, dtype, count, begin).reshape(shape).astype(dtype.newbyteorder("="))
    return tensors, metadata


# -- modules, optimizers, meta-learners ------------------------------------------------------------------
def _default_optimizer(module: Module, optimizer: Optimizer | None) -> Optimizer | None:
    """A meta-learner's own optimizer (the one ``meta_learn`` uses by default) when none is given."""
    if optimizer is None and callable(getattr(module, "default_optimizer", None)):
        return module.default_optimizer()
    return optimizer


def save_checkpoint(path: PathLike, module: Module, optimizer: Optimizer | None = None, *,
                    metadata: Mapping[str, Any] | None = None) -> None:
    """Save ``module``'s parameters and buffers, ``optimizer``'s state (for a meta-learner, by default the
    one ``meta_learn`` uses) and JSON-able ``metadata`` to ``path`` as safetensors, atomically: a crash
    mid-save leaves the previous file at ``path`` intact."""
    tensors = {name: t.numpy() for name, t in module.state_dict().items()}
    doc: dict[str, Any] = {"format": FORMAT, "module": type(module).__name__, "metadata": dict(metadata or {})}
    optimizer = _default_optimizer(module, optimizer)
    if optimizer is not None:
        sd = optimizer.state_dict()
        scalars = {}
        for index, state in sd["state"].items():
            scalars[str(index)] = {}
            for key, value in state.items():
                if isinstance(value, Tensor):
                    tensors[f"{OPTIMIZER}{index}/{key}"] = value.numpy()
                else:
                    scalars[str(index)][key] = value
        doc["optimizer"] = {"type": type(optimizer).__name__, "param_groups": sd["param_groups"], "state": scalars}
    try:
        text = json.dumps(doc)
    except TypeError as e:
        raise TypeError(f"save_checkpoint: metadata must be JSON-serialisable ({e})") from None
    write_safetensors(path, tensors, {"neurenix": text})
    log.debug("saved checkpoint %s (%d tensors)", path, len(tensors))


def load_checkpoint(path: PathLike, module: Module, optimizer: Optimizer | None = None) -> dict[str, Any]:
    """Load a checkpoint saved by :func:`save_checkpoint` into ``module`` (and ``optimizer``; for a
    meta-learner, by default its own) and return the saved metadata.

    Everything is checked before anything is changed: a corrupt or truncated file, or one whose tensor
    names or shapes do not fit ``module`` (all differences are listed), raises a CheckpointError.
    A plain safetensors state dict (no neurenix metadata) loads into the module too.
    """
    tensors, meta = read_safetensors(path)
    try:
        doc = json.loads(meta["neurenix"]) if "neurenix" in meta else {"metadata": {}}
        if "neurenix" in meta and doc.get("format") != FORMAT:
            raise ValueError(f"unknown format {doc.get('format')!r}")
    except (ValueError, AttributeError) as e:
        raise CheckpointError(f"{path}: unreadable neurenix metadata ({e})") from None
    weights = {k: v for k, v in tensors.items() if not k.startswith(OPTIMIZER)}
    _check_fits(path, module, weights)
    optimizer = _default_optimizer(module, optimizer) if "optimizer" in doc else optimizer
    try:
        state = _optimizer_state(path, doc.get("optimizer"), tensors, optimizer) if optimizer is not None else None
    except (KeyError, TypeError, IndexError, AttributeError) as e:
        raise CheckpointError(f"{path}: malformed optimizer state ({type(e).__name__}: {e})") from None
    module.load_state_dict({k: nx.tensor(v) for k, v in weights.items()})
    if state is not None:
        optimizer.load_state_dict(state)
    log.debug("loaded checkpoint %s into %s", path, type(module).__name__)
    return doc["metadata"]


def _check_fits(path: PathLike, module: Module, weights: dict[str, np.ndarray]) -> None:
    own = {k: tuple(t.shape) for k, t in module.state_dict().items()}
    problems = [f"missing {k} {s}" for k, s in own.items() if k not in weights]
    problems += [f"unexpected {k} {tuple(w.shape)}" for k, w in weights.items() if k not in own]
    problems += [f"{k} is {tuple(w.shape)} in the file but {own[k]} in the model"
                 for k, w in weights.items() if k in own and tuple(w.shape) != own[k]]
    if problems:
        raise CheckpointError(f"{path} does not fit this {type(module).__name__}: {'; '.join(problems)}")


def _optimizer_state(path: PathLike, saved: dict | None, tensors: dict[str, np.ndarray],
                     optimizer: Optimizer) -> dict | None:
    """The optimizer's state dict from the file, checked against ``optimizer`` (its class and parameters)."""
    if saved is None:
        return None  # the file has no optimizer state: keep the optimizer as it is
    if saved["type"] != type(optimizer).__name__:
        raise CheckpointError(f"{path} holds {saved['type']} state, not {type(optimizer).__name__}")
    params = [p for g in optimizer.param_groups for p in g["params"]]
    sizes = [len(g["params"]) for g in saved["param_groups"]]
    if sizes != [len(g["params"]) for g in optimizer.param_groups]:
        raise CheckpointError(f"{path}: the optimizer state is for parameter groups of sizes {sizes}, this "
                              f"optimizer's are {[len(g['params']) for g in optimizer.param_groups]}")
    state = {int(i): dict(v) for i, v in saved["state"].items()}
    for name, value in tensors.items():
        if name.startswith(OPTIMIZER):
            index, key = name[len(OPTIMIZER):].split("/", 1)
            p = params[int(index)]
            if value.shape != tuple(p.shape) and value.size != 1:
                raise CheckpointError(f"{path}: optimizer state {key!r} of parameter {index} is {value.shape}, "
                                      f"the parameter is {tuple(p.shape)}")
            state.setdefault(int(index), {})[key] = nx.tensor(value, device=p.device)
    groups = [{k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in g.items()}
              for g in saved["param_groups"]]
    return {"state": state, "param_groups": groups}
