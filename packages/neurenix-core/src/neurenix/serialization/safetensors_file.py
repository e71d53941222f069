"""The safetensors container, read and written with NumPy and json: 8 bytes (little-endian) giving the
header's length, a JSON header mapping each tensor's name to ``{"dtype", "shape", "data_offsets"}`` plus a
``"__metadata__"`` map of strings, then the raw little-endian data. Reading decodes JSON and copies bytes:
a file cannot run code.

(neurenix-meta's checkpoint module has its own reader and writer, with atomic writes and a checksum; this
one is the minimal core needs for ``neurenix.save``/``load``: a shared one would move meta's into core.)
"""

from __future__ import annotations

import json
import math
import struct

import numpy as np

DTYPES = {"F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "I64": np.dtype("<i8"), "BOOL": np.dtype("|b1"),
          "I8": np.dtype("|i1")}
CODES = {v: k for k, v in DTYPES.items()}
MAX_HEADER = 100_000_000  # the reference implementation's limit


def encode(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """The bytes of a safetensors file holding ``tensors`` (float32/64, int64, bool, int8 arrays) and ``metadata``."""
    header: dict = {"__metadata__": metadata}
    chunks, offset = [], 0
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": CODES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-aligned, as the reference writes it
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def decode(blob: bytes, what: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors and metadata of a safetensors file's bytes; a ValueError naming ``what`` if they are not one."""
    def bad(reason: str) -> ValueError:
        return ValueError(f"neurenix.load: {what} is not a file neurenix.save wrote ({reason})")

    if len(blob) < 8:
        raise bad("shorter than a safetensors header")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > min(MAX_HEADER, len(blob) - 8):
        raise bad(f"a header of {n} bytes in a file of {len(blob)}")
    try:
        header = json.loads(blob[8:8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad(f"its header is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    data = memoryview(blob)[8 + n:]
    tensors, end = {}, 0
    for name, info in sorted(header.items(), key=lambda kv: _begin(kv[1])):
        tensors[name], end = _entry(name, info, data, end, bad)
    if end != len(data):
        raise bad(f"{len(data) - end} bytes of data no tensor covers")
    return tensors, metadata


def _begin(info) -> int:
    offsets = info.get("data_offsets") if isinstance(info, dict) else None
    return offsets[0] if isinstance(offsets, list) and offsets and isinstance(offsets[0], int) else -1


def _entry(name: str, info, data: memoryview, expected: int, bad) -> tuple[np.ndarray, int]:
    if not isinstance(info, dict) or info.get("dtype") not in DTYPES:
        raise bad(f"tensor {name!r} has no dtype neurenix reads (F32, F64, I64, BOOL, I8)")
    shape, offsets = info.get("shape"), info.get("data_offsets")
    if not (isinstance(shape, list) and all(isinstance(s, int) and s >= 0 for s in shape)
            and isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
        raise bad(f"tensor {name!r} has a malformed shape or data_offsets")
    begin, end = offsets
    dtype = DTYPES[info["dtype"]]
    if begin != expected or end > len(data) or end - begin != math.prod(shape) * dtype.itemsize:
        raise bad(f"tensor {name!r}'s data_offsets {offsets} do not fit its shape {shape} and the data")
    array = np.frombuffer(data[begin:end], dtype=dtype).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True), end
