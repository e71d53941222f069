"""``neurenix.save`` and ``neurenix.load``: tensors, and dicts, lists and tuples of them and of plain values
(state dicts of modules, optimizers and schedulers), in a safetensors file whose metadata holds the
structure as JSON. Never pickle: loading a file cannot run code, and what JSON and tensors cannot hold
(functions, arbitrary objects) is refused at saving, with the path to it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable

import numpy as np

from ..creation import from_numpy
from ..device import Device
from ..tensor import Tensor
from .safetensors_file import CODES, decode, encode

FORMAT = "neurenix/1"
_PLAIN = (bool, int, str, type(None))


def save(obj, f) -> None:
    """Write ``obj`` to ``f`` (a path, or a binary file opened for writing). ``obj`` is a Tensor or a nest of
    dicts, lists and tuples holding tensors, numbers, strings, bools and None. A tensor that appears twice is
    stored once and loads as one tensor. The file is a valid safetensors file (tensors named ``"0"``,
    ``"1"``...), readable by other tools."""
    arrays: dict[str, np.ndarray] = {}
    seen: dict[int, str] = {}
    structure = _encode(obj, arrays, seen, "obj")
    blob = encode(arrays, {"format": FORMAT, "structure": json.dumps(structure, allow_nan=False)})
    if hasattr(f, "write"):
        f.write(blob)
    else:
        with open(os.fspath(f), "wb") as out:
            out.write(blob)


def load(f, map_location=None, weights_only: bool = True):
    """Read what ``neurenix.save`` wrote to ``f`` (a path or a binary file). Tensors go back to the device
    they were saved from, unless ``map_location`` says otherwise: a device (``"cpu"``, ``Device``), a dict
    from saved device names to devices, or a function ``(tensor, saved_device_name) -> tensor``.
    ``weights_only`` is accepted for PyTorch's signature: this format only ever holds data."""
    if not weights_only:
        raise ValueError("neurenix.load: weights_only=False would allow pickled objects, which this format never "
                         "holds; leave it True")
    if hasattr(f, "read"):
        blob, what = f.read(), repr(getattr(f, "name", "the file"))
    else:
        with open(os.fspath(f), "rb") as src:
            blob, what = src.read(), repr(os.fspath(f))
    arrays, metadata = decode(blob, what)
    if metadata.get("format") != FORMAT:
        raise ValueError(f"neurenix.load: {what} is a safetensors file but not one neurenix.save wrote (format "
                         f"{metadata.get('format')!r}); read it with a safetensors reader")
    place = _placement(map_location)
    tensors: dict[str, Tensor] = {}
    return _decode(json.loads(metadata["structure"]), arrays, tensors, place, what)


# -- the structure: JSON, with tensors by name ----------------------------------------------------------------
def _encode(obj, arrays: dict, seen: dict, path: str):
    if isinstance(obj, Tensor):
        return {"tensor": _store(obj, arrays, seen, path), "device": str(obj.device),
                "requires_grad": obj.requires_grad}
    if isinstance(obj, np.generic) and obj.dtype.kind in "biuf":  # NumPy's scalars: as Python's
        obj = obj.item()
    if type(obj) is float:
        return obj if math.isfinite(obj) else {"float": repr(obj)}
    if isinstance(obj, _PLAIN) and type(obj) in _PLAIN:
        return obj
    if isinstance(obj, dict):
        return {"dict": [[_encode(k, arrays, seen, f"{path} key {k!r}"), _encode(v, arrays, seen, f"{path}[{k!r}]")]
                         for k, v in obj.items()]}
    if type(obj) in (list, tuple):
        return {type(obj).__name__: [_encode(v, arrays, seen, f"{path}[{i}]") for i, v in enumerate(obj)]}
    raise TypeError(f"neurenix.save: cannot save {path}, a {type(obj).__name__}: only tensors, numbers, strings, "
                    "bools, None and dicts, lists and tuples of them are saved (never pickled objects)")


def _store(t: Tensor, arrays: dict, seen: dict, path: str) -> str:
    name = seen.get(id(t))
    if name is None:
        array = np.asarray(t.detach().numpy())
        if array.dtype not in CODES:
            raise TypeError(f"neurenix.save: {path} has dtype {t.dtype}, which the format does not hold")
        name = seen[id(t)] = str(len(arrays))
        arrays[name] = array
    return name


def _decode(node, arrays: dict, tensors: dict, place: Callable, what: str):
    if not isinstance(node, (dict, list)):
        return node
    if isinstance(node, dict) and len(node) == 1:
        (kind, value), = node.items()
        if kind == "dict":
            return {_key(_decode(k, arrays, tensors, place, what)): _decode(v, arrays, tensors, place, what)
                    for k, v in value}
        if kind in ("list", "tuple"):
            items = [_decode(v, arrays, tensors, place, what) for v in value]
            return items if kind == "list" else tuple(items)
        if kind == "float":
            return float(value)
    if isinstance(node, dict) and "tensor" in node and node.get("tensor") in arrays:
        name = node["tensor"]
        if name not in tensors:
            tensors[name] = _tensor(arrays[name], node, place)
        return tensors[name]
    raise ValueError(f"neurenix.load: {what} has a structure entry neurenix does not read: {node!r:.80}")


def _key(k):
    return tuple(_key(e) for e in k) if isinstance(k, list) else k


def _tensor(array: np.ndarray, node: dict, place: Callable) -> Tensor:
    saved = str(node.get("device", "cpu"))
    t = place(from_numpy(array, "cpu"), saved)  # (a fresh C-ordered copy: decode makes one)
    t.requires_grad = bool(node.get("requires_grad", False)) and t.is_floating_point()
    return t


def _placement(map_location) -> Callable:
    """``(tensor on the host, saved device name) -> tensor where it belongs``."""
    if map_location is None:
        return lambda t, saved: t.to(saved)
    if callable(map_location) and not isinstance(map_location, (str, Device)):
        return map_location
    if isinstance(map_location, dict):
        return lambda t, saved: t.to(str(map_location.get(saved, saved)))
    if isinstance(map_location, (str, Device)):
        device = Device(map_location)
        return lambda t, saved: t.to(device)
    raise TypeError(f"neurenix.load: map_location must be a device, a dict of devices or a function, got "
                    f"{type(map_location).__name__}")
