"""Checkpoints in the safetensors format: modules, optimizers and meta-learners, written atomically.

The format: 8 bytes (little-endian) giving the header's length N, a JSON header of N bytes mapping each
tensor's name to ``{"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}`` (byte offsets into the
data that follows) plus an optional ``"__metadata__"`` map of strings, then the raw little-endian data.
Reading a file decodes JSON and copies bytes, so an untrusted checkpoint cannot run code (pickle could).
The reader and writer are written here with NumPy and json (the format is that small), so checkpoints
need no further dependency; the tests check the files against the ``safetensors`` package both ways, and
the reader refuses what that reference refuses (offsets that overlap, leave gaps or do not cover the data,
duplicate keys, a header over 100 MB).

Layout of a neurenix checkpoint: the module's ``state_dict()`` under its own names (so the file is a
plain safetensors state dict to other tools), the optimizer's state tensors as ``optimizer/<index>/<key>``,
in ``__metadata__["neurenix"]`` a JSON document: the module's class, the optimizer's class, parameter
groups and non-tensor state (step counts), and the caller's metadata (``meta_learn`` keeps its epoch,
history, random state and settings there); and in ``__metadata__["neurenix.sha256"]`` the SHA-256 of the
tensor entries, the other metadata and the data, so that a changed byte anywhere is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import numbers
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import neurenix as nx
from neurenix.nn import Module
from neurenix.optim import Optimizer

log = logging.getLogger(__name__)

PathLike = str | os.PathLike
DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "|i1",
          "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "|u1", "BOOL": "|b1"}
CODES = {np.dtype(v): k for k, v in DTYPES.items()}
FORMAT = "neurenix-checkpoint/2"  # /2 adds the checksum; /1 files (without one) still load
FORMATS = ("neurenix-checkpoint/1", FORMAT)
OPTIMIZER = "optimizer/"
CHECKSUM = "neurenix.sha256"
MAX_HEADER = 100_000_000  # the reference implementation's limit


class CheckpointError(ValueError):
    """A checkpoint that cannot be read (corrupt, truncated, not safetensors) or does not fit the model."""


# -- the file format ---------------------------------------------------------------------------------
def write_safetensors(path: PathLike, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None
                      ) -> None:
    """Write ``tensors`` (NumPy arrays by name) and string ``metadata`` as a safetensors file, atomically,
    with a checksum of everything in ``__metadata__["neurenix.sha256"]``."""
    entries, arrays, offset = {}, [], 0
    for name, a in tensors.items():
        a = np.asarray(a)
        code = CODES.get(a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype)
        if code is None:
            raise TypeError(f"write_safetensors: tensor {name!r} has dtype {a.dtype}, which safetensors cannot hold")
        raw = np.ascontiguousarray(a, dtype=DTYPES[code]).reshape(-1).view(np.uint8)  # C order, little-endian
        entries[name] = {"dtype": code, "shape": list(a.shape), "data_offsets": [offset, offset + raw.size]}
        arrays.append(raw)
        offset += raw.size
    metadata = dict(metadata or {})
    metadata[CHECKSUM] = _digest(entries, metadata, arrays)
    text = json.dumps({"__metadata__": metadata, **entries}, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as the reference writer does
    atomic_write(path, [len(text).to_bytes(8, "little"), text, *arrays])


def _digest(entries: Mapping[str, dict], metadata: Mapping[str, str], data: Iterable) -> str:
    """SHA-256 of the tensor entries, the metadata (but the checksum itself) and the data, in a fixed order."""
    described = {"tensors": sorted([name, e["dtype"], e["shape"], e["data_offsets"]] for name, e in entries.items()),
                 "metadata": {k: v for k, v in metadata.items() if k != CHECKSUM}}
    h = hashlib.sha256(json.dumps(described, sort_keys=True, separators=(",", ":")).encode())
    for chunk in data:
        h.update(chunk)
    return h.hexdigest()


def atomic_write(path: PathLike, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to a temporary file beside ``path``, flush it to disk, then rename it over ``path``:
    readers see the old file or the new one, never a partial one, whatever happens mid-write. The file gets
    the permissions the user's umask gives new files; temporary files of earlier saves of ``path`` whose
    process died (killed mid-save) are removed."""
    path = Path(path)
    _remove_stale(path)
    fd, tmp = _temporary(path)
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


def _temporary(path: Path) -> tuple[int, Path]:
    """A new file ``.<name>.<pid>-<random>.tmp`` beside ``path``, opened for writing. Mode 0o666 lets the
    umask decide the permissions, as for any new file (``tempfile.mkstemp`` would force 0o600)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
        with contextlib.suppress(FileExistsError):
            return os.open(tmp, flags, 0o666), tmp


def _remove_stale(path: Path) -> None:
    """Remove ``path``'s temporary files left by saves whose process no longer runs (POSIX only: elsewhere
    there is no safe way to ask whether a process lives)."""
    if os.name != "posix":
        return
    prefix = f".{path.name}."
    with contextlib.suppress(OSError), os.scandir(path.parent) as entries:
        for entry in entries:
            pid = entry.name[len(prefix):].split("-", 1)[0] if entry.name.startswith(prefix) else ""
            if entry.name.endswith(".tmp") and pid.isdigit() and not _alive(int(pid)):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else
        return True
    return True


def check_writable(path: PathLike, what: str = "a checkpoint") -> None:
    """Raise an OSError now if ``what`` could not be saved at ``path`` later (a missing or read-only
    directory, a directory in the way): creates and removes a temporary file beside it."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot save {what} as {path}: it is a directory")
    try:
        fd, tmp = _temporary(path)
    except OSError as e:
        raise type(e)(e.errno, f"cannot save {what} as {path}: {e.strerror}") from None
    os.close(fd)
    os.unlink(tmp)


def read_safetensors(path: PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a safetensors file: (arrays by name, metadata). A CheckpointError says what is wrong with a bad file;
    a file with a ``neurenix.sha256`` checksum is refused unless its contents match it (the checksum is not
    among the metadata returned)."""
    tensors, metadata, _ = _read(path)
    return tensors, metadata


def _read(path: PathLike) -> tuple[dict[str, np.ndarray], dict[str, str], bool]:
    """:func:`read_safetensors`, and whether the file had a checksum."""
    data = Path(path).read_bytes()

    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"{path} is not a valid safetensors file: {why}")

    header, body = _header(data, bad)
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise bad("__metadata__ must map strings to strings")
    layout = {name: _entry(name, info, bad) for name, info in header.items()}
    _check_coverage(layout, len(body), bad)
    checksum = metadata.pop(CHECKSUM, None)
    if checksum is not None and _digest(header, metadata, [body]) != checksum:
        raise CheckpointError(f"{path}: the checksum does not match the contents: the file was changed or damaged "
                              "after it was written")
    # dtype.type: NumPy's own dtype objects; the C backend compares dtypes by identity, and a byte-order variant
    # (equal, but another object) made its fused optimizer steps fall back to NumPy's, which round differently
    return ({name: np.frombuffer(body, dtype, math.prod(shape), begin).reshape(shape).astype(dtype.type)
             for name, (dtype, shape, begin, _) in layout.items()}, metadata, checksum is not None)


def _header(data: bytes, bad: Callable[[str], CheckpointError]) -> tuple[dict, memoryview]:
    """The parsed JSON header (duplicate keys and non-JSON numbers refused) and the data after it."""
    if len(data) < 8:
        raise bad(f"it has {len(data)} bytes, fewer than the 8 of the header length (truncated?)")
    n = int.from_bytes(data[:8], "little")
    if n > MAX_HEADER:
        raise bad(f"the header length says {n} bytes, more than the {MAX_HEADER} safetensors allows")
    if n > len(data) - 8:
        raise bad(f"the header length says {n} bytes but only {len(data) - 8} follow (truncated?)")
    try:
        header = json.loads(data[8:8 + n], object_pairs_hook=_unique, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise bad(f"the header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise bad(f"the header is a JSON {type(header).__name__}, not an object")
    return header, memoryview(data)[8 + n:]


def _unique(pairs: list[tuple[str, Any]]) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) < len(keys):
        raise ValueError(f"duplicate key {next(k for k in keys if keys.count(k) > 1)!r}")
    return dict(pairs)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _entry(name: str, info: Any, bad: Callable[[str], CheckpointError]) -> tuple[np.dtype, tuple, int, int]:
    """(dtype, shape, begin, end) of one tensor's header entry, checked."""
    try:
        dtype, shape, offsets = np.dtype(DTYPES[info["dtype"]]), tuple(info["shape"]), list(info["data_offsets"])
    except (KeyError, TypeError, ValueError):
        raise bad(f"tensor {name!r} has a malformed entry {info!r}") from None
    if not all(type(v) is int and v >= 0 for v in (*shape, *offsets)) or len(offsets) != 2:
        raise bad(f"tensor {name!r} has a malformed entry {info!r}")
    begin, end = offsets
    if end - begin != math.prod(shape) * dtype.itemsize:
        raise bad(f"tensor {name!r}: offsets {offsets} do not hold shape {list(shape)} of {info['dtype']}")
    return dtype, shape, begin, end


def _check_coverage(layout: dict[str, tuple], size: int, bad: Callable[[str], CheckpointError]) -> None:
    """Tensors must tile the data exactly: no overlap, no gap, nothing after the last (as the reference demands)."""
    at = 0
    for name, (_, _, begin, end) in sorted(layout.items(), key=lambda item: item[1][2:]):
        if end > size:
            raise bad(f"tensor {name!r} ends at data byte {end} but the file holds {size} (truncated?)")
        if begin != at:
            what = "overlaps the tensor before it" if begin < at else f"leaves a gap of {begin - at} bytes before it"
            raise bad(f"tensor {name!r}: data offset {begin} {what} (expected {at})")
        at = end
    if at != size:
        raise bad(f"the tensors cover {at} of the {size} data bytes: the file is not fully covered")


# -- modules, optimizers, meta-learners ------------------------------------------------------------------
def _default_optimizer(module: Module, optimizer: Optimizer | None) -> Optimizer | None:
    """A meta-learner's own optimizer (the one ``meta_learn`` uses by default) when none is given."""
    if optimizer is None and callable(getattr(module, "default_optimizer", None)):
        return module.default_optimizer()
    return optimizer


def _check_arguments(module: Any, optimizer: Any) -> None:
    if not isinstance(module, Module):
        raise TypeError(f"module must be a neurenix.nn.Module, got {type(module).__name__}")
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a neurenix.optim.Optimizer or None, got {type(optimizer).__name__}")


def save_checkpoint(path: PathLike, module: Module, optimizer: Optimizer | None = None, *,
                    metadata: Mapping[str, Any] | None = None) -> None:
    """Save ``module``'s parameters and buffers, ``optimizer``'s state (for a meta-learner, by default the
    one ``meta_learn`` uses) and JSON-able ``metadata`` to ``path`` as safetensors, atomically: a crash
    mid-save leaves the previous file at ``path`` intact."""
    _check_arguments(module, optimizer)
    tensors = {name: t.numpy() for name, t in module.state_dict().items()}
    doc: dict[str, Any] = {"format": FORMAT, "module": type(module).__name__, "metadata": dict(metadata or {})}
    optimizer = _default_optimizer(module, optimizer)
    if optimizer is not None:
        sd = optimizer.state_dict()
        scalars = {}
        for index, state in sd["state"].items():
            scalars[str(index)] = {}
            for key, value in state.items():
                if isinstance(value, nx.Tensor):
                    tensors[f"{OPTIMIZER}{index}/{key}"] = value.numpy()
                else:
                    scalars[str(index)][key] = value
        doc["optimizer"] = {"type": type(optimizer).__name__, "param_groups": sd["param_groups"], "state": scalars}
    try:
        text = json.dumps(doc, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"save_checkpoint: metadata must be JSON-serialisable with finite numbers ({e})") from None
    write_safetensors(path, tensors, {"neurenix": text})
    log.debug("saved checkpoint %s (%d tensors)", path, len(tensors))


def load_checkpoint(path: PathLike, module: Module, optimizer: Optimizer | None = None, *,
                    with_optimizer: bool = True) -> dict[str, Any]:
    """Load a checkpoint saved by :func:`save_checkpoint` into ``module`` (and ``optimizer``; for a
    meta-learner, by default its own) and return the saved metadata. ``with_optimizer=False`` loads the
    module's tensors only and leaves any saved optimizer state aside (to evaluate, say).

    Everything is checked before anything is changed: a corrupt, truncated or altered file (its checksum),
    or one whose tensor names, shapes or dtypes do not fit ``module``, or whose optimizer state does not fit
    ``optimizer`` (all differences are listed), raises a CheckpointError. A plain safetensors state dict
    (no neurenix metadata, so no checksum) loads into the module too.
    """
    if type(with_optimizer) is not bool:
        raise TypeError(f"with_optimizer must be True or False, got {with_optimizer!r}")
    if not with_optimizer and optimizer is not None:
        raise ValueError("load_checkpoint: an optimizer was given with with_optimizer=False; pass one or the other")
    return restore(path, module, optimizer, with_optimizer=with_optimizer)


def restore(path: PathLike, module: Module, optimizer: Optimizer | None = None,
            check: Callable[[dict], None] | None = None, with_optimizer: bool = True) -> dict[str, Any]:
    """:func:`load_checkpoint`, with ``check(metadata)`` called after every other check and before anything
    changes, so that a caller can refuse the file's metadata (``meta_learn`` checks its epoch and history)."""
    _check_arguments(module, optimizer)
    loaded = read_checkpoint(path)
    weights = {k: v for k, v in loaded.tensors.items() if not k.startswith(OPTIMIZER)}
    _check_fits(path, module, weights)
    if with_optimizer and "optimizer" in loaded.doc:
        optimizer = _default_optimizer(module, optimizer)
    state = _optimizer_state(path, loaded.doc.get("optimizer"), loaded.tensors, optimizer) \
        if optimizer is not None else None
    if check is not None:
        check(loaded.metadata)
    module.load_state_dict({k: nx.tensor(v) for k, v in weights.items()})
    if state is not None:
        optimizer.load_state_dict(state)
    log.debug("loaded checkpoint %s into %s", path, type(module).__name__)
    return loaded.metadata


@dataclass(frozen=True)
class Loaded:
    """A checkpoint file, read and checked: its arrays and its neurenix document."""

    tensors: dict[str, np.ndarray]
    doc: dict[str, Any]

    @property
    def metadata(self) -> dict[str, Any]:
        return self.doc["metadata"]


def read_checkpoint(path: PathLike) -> Loaded:
    """Read and check a checkpoint file (format, checksum, the neurenix document's structure) without
    loading it into anything: what ``neurenix train --resume`` looks at before it starts."""
    tensors, meta, checked = _read(path)
    if "neurenix" not in meta:
        return Loaded(tensors, {"metadata": {}})
    try:
        doc = json.loads(meta["neurenix"])
        if not isinstance(doc, dict) or doc.get("format") not in FORMATS:
            raise ValueError(f"unknown format {doc.get('format') if isinstance(doc, dict) else doc!r}")
        if not isinstance(doc.get("metadata"), dict):
            raise ValueError(f"its metadata is {doc.get('metadata')!r}, not an object")
    except ValueError as e:
        raise CheckpointError(f"{path}: unreadable neurenix metadata ({e})") from None
    if doc["format"] != FORMATS[0] and not checked:
        raise CheckpointError(f"{path}: the checksum is missing (a {doc['format']} file always has one)")
    return Loaded(tensors, doc)


def _check_fits(path: PathLike, module: Module, weights: dict[str, np.ndarray]) -> None:
    own = {k: (tuple(t.shape), t.dtype) for k, t in module.state_dict().items()}
    problems = [f"missing {k} {s}" for k, (s, _) in own.items() if k not in weights]
    problems += [f"unexpected {k} {tuple(w.shape)}" for k, w in weights.items() if k not in own]
    problems += [f"{k} is {tuple(w.shape)} in the file but {own[k][0]} in the model"
                 for k, w in weights.items() if k in own and tuple(w.shape) != own[k][0]]
    problems += [f"{k} is {CODES[w.dtype]} in the file but {own[k][1]} in the model (convert it first)"
                 for k, w in weights.items() if k in own and w.dtype != own[k][1].np]
    if problems:
        raise CheckpointError(f"{path} does not fit this {type(module).__name__}: {'; '.join(problems)}")


def _optimizer_state(path: PathLike, saved: Any, tensors: dict[str, np.ndarray], optimizer: Optimizer) -> dict | None:
    """The optimizer's state dict from the file, checked against ``optimizer`` (its class, parameter groups,
    hyper-parameters, and each state entry's keys, shapes and dtypes)."""
    if saved is None:
        return None  # the file has no optimizer state: keep the optimizer as it is

    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"{path}: the optimizer state {why}")

    if not isinstance(saved, dict) or not isinstance(saved.get("param_groups"), list) or \
            not isinstance(saved.get("state"), dict):
        raise bad("is malformed (expected type, param_groups and state)")
    if saved.get("type") != type(optimizer).__name__:
        raise CheckpointError(f"{path} holds {saved.get('type')} state, not {type(optimizer).__name__}")
    params = [p for g in optimizer.param_groups for p in g["params"]]
    groups = _param_groups(saved["param_groups"], optimizer, bad)
    state: dict[int, dict] = {}
    for index, scalars in saved["state"].items():
        i = _index(index, len(params), bad)
        if not isinstance(scalars, dict):
            raise bad(f"of parameter {index} is {scalars!r}, not an object")
        state[i] = {key: _scalar(key, value, index, bad) for key, value in scalars.items()}
    for name, value in tensors.items():
        if name.startswith(OPTIMIZER):
            index, _, key = name[len(OPTIMIZER):].partition("/")
            i = _index(index, len(params), bad)
            p = params[i]
            if value.shape != tuple(p.shape) or value.dtype != p.dtype.np:
                raise bad(f"{key!r} of parameter {index} is {CODES[value.dtype]} {value.shape}, the parameter is "
                          f"{p.dtype} {tuple(p.shape)}")
            state.setdefault(i, {})[key] = nx.tensor(value, device=p.device)
    for i, entry in state.items():
        _check_keys(entry, i, groups, optimizer, bad)
    return {"state": state, "param_groups": groups}


def _param_groups(saved: list, optimizer: Optimizer, bad: Callable[[str], CheckpointError]) -> list[dict]:
    """The saved parameter groups, checked against the optimizer's: sizes, parameter order, and
    hyper-parameters of the same kinds, finite and >= 0."""
    if not all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in saved):
        raise bad("has malformed parameter groups")
    sizes, own = [len(g["params"]) for g in saved], [len(g["params"]) for g in optimizer.param_groups]
    if sizes != own:
        raise bad(f"is for parameter groups of sizes {sizes}, this optimizer's are {own}")
    if [i for g in saved for i in g["params"]] != list(range(sum(sizes))):
        raise bad("numbers its parameters out of order")
    groups = []
    for k, (g, mine) in enumerate(zip(saved, optimizer.param_groups)):
        if set(g) != set(mine):
            raise bad(f"group {k} has hyper-parameters {sorted(g)}, this optimizer's are {sorted(mine)}")
        for key, value in g.items():
            if key != "params":
                _hyper(key, value, mine[key], bad)
        groups.append({key: tuple(v) if isinstance(v, list) and key != "params" else v for key, v in g.items()})
    return groups


def _hyper(key: str, value: Any, mine: Any, bad: Callable[[str], CheckpointError]) -> None:
    """A saved hyper-parameter must be of the kind of the optimizer's own; numbers finite and >= 0."""
    def number(v: Any) -> bool:
        return isinstance(v, numbers.Real) and not isinstance(v, bool)

    if isinstance(mine, bool) or not (number(mine) or isinstance(mine, (tuple, list))):
        ok = type(value) is type(mine)  # flags, and other optimizers' strings or None
    elif number(mine):
        ok = number(value) and math.isfinite(value) and value >= 0
    else:
        ok = isinstance(value, list) and len(value) == len(mine) and \
            all(number(v) and math.isfinite(v) and v >= 0 for v in value)
    if not ok:
        raise bad(f"has {key}={value!r}, which does not fit this optimizer's {key}={mine!r} (numbers must be "
                  "finite and >= 0)")


def _index(index: str, n: int, bad: Callable[[str], CheckpointError]) -> int:
    if not index.isdigit() or int(index) >= n:
        raise bad(f"names parameter {index!r}, but the optimizer has parameters 0..{n - 1}")
    return int(index)


def _scalar(key: str, value: Any, index: str, bad: Callable[[str], CheckpointError]) -> Any:
    if key == "step" and (type(value) is not int or value < 1):
        raise bad(f"of parameter {index} has step {value!r}; a step count is an int >= 1")
    if isinstance(value, float) and not math.isfinite(value):
        raise bad(f"of parameter {index} has {key}={value!r}")
    return value


# the state each step of our optimizers reads: a file without it would fail at the next step, or (SGD's
# momentum) silently start over
NEEDS: dict[str, Callable[[dict], tuple[str, ...]]] = {
    "Adam": lambda group: ("step", "exp_avg", "exp_avg_sq"),
    "AdamW": lambda group: ("step", "exp_avg", "exp_avg_sq"),
    "SGD": lambda group: ("momentum_buffer",) if group["momentum"] else (),
}


def _check_keys(entry: dict, i: int, groups: list[dict], optimizer: Optimizer,
                bad: Callable[[str], CheckpointError]) -> None:
    needs = NEEDS.get(type(optimizer).__name__)
    if needs is None:
        return
    group = next(g for g in groups if i in g["params"])
    missing = [k for k in needs(group) if k not in entry]
    if missing:
        raise bad(f"of parameter {i} lacks {missing} (it has {sorted(entry)})")
