"""A backend's cffi declarations checked against the vendor's real headers, with no GPU and no vendor library.

A cdef in ABI mode is a promise about a library's binary interface that nothing checks when the library is
opened: a wrong pointer type or enum value shows only on the hardware. :func:`check` compiles, against the
vendor's headers, a C file that holds each statement of the cdef to the header's declaration:

- a function: our prototype as a function pointer, initialised with the header's function. Any difference in
  return or parameter types (``int*`` for ``long long*``, ``int`` for an enum, a missing ``const``) is an
  ``incompatible-pointer-types`` diagnostic, made an error;
- an enum (``typedef enum { NAME = value, ... } type;``): each enumerator equal to the header's, and the
  type int-sized, as cffi assumes;
- any other typedef: the same type as the header's (``__builtin_types_compatible_p``).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

_ENUM = re.compile(r"typedef\s+enum\s*\w*\s*\{(?P<body>.*)\}\s*(?P<name>\w+)$", re.S)
_TYPEDEF = re.compile(r"typedef\s+(?P<type>.*?)\s*\b(?P<name>\w+)$", re.S)
_FUNCTION = re.compile(r"(?P<ret>.*?)\b(?P<name>\w+)\s*\((?P<params>.*)\)$", re.S)


class AbiError(AssertionError):
    """The declarations disagree with the headers; the message holds the compiler's diagnostics."""


def statements(cdef: str) -> list[str]:
    """The cdef's declarations, without comments, one per ``;`` outside braces."""
    text = re.sub(r"/\*.*?\*/|//[^\n]*", " ", cdef, flags=re.S)
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "{") - (ch == "}")
        if ch == ";" and depth == 0:
            out.append(" ".join(text[start:i].split()))
            start = i + 1
    return [s for s in out if s]


def _check_statement(stmt: str, index: int) -> str:
    """The C that holds one cdef statement to the header's declaration."""
    if m := _ENUM.match(stmt):
        checks = [f'_Static_assert(sizeof({m["name"]}) == sizeof(int), "{m["name"]} is not int-sized");']
        for item in m["body"].split(","):
            name, value = (part.strip() for part in item.split("="))
            checks.append(f'_Static_assert({name} == {value}, "{name} is not {value} in the header");')
        return "\n".join(checks)
    if stmt.startswith("typedef"):
        m = _TYPEDEF.match(stmt)
        return (f'_Static_assert(__builtin_types_compatible_p({m["name"]}, {m["type"]}), '
                f'"typedef {m["name"]}: the header\'s is not {m["type"]}");')
    m = _FUNCTION.match(stmt)
    if m is None:
        raise ValueError(f"not a declaration this check understands: {stmt!r}")
    return f'static {m["ret"].strip()} (*const nx_abi_{index}_{m["name"]})({m["params"]}) = {m["name"]};'


def check_source(cdef: str, headers: Iterable[str]) -> str:
    """The C file :func:`check` compiles."""
    lines = ["#include <stddef.h>", "#include <stdint.h>", *(f"#include <{h}>" for h in headers)]
    lines += [_check_statement(s, i) for i, s in enumerate(statements(cdef))]
    return "\n".join(lines) + "\n"


def check(cdef: str, headers: Iterable[str], include_dirs: Iterable[Path] = (), defines: Iterable[str] = ()) -> None:
    """Compile ``cdef``'s declarations against ``headers`` (found in ``include_dirs``, then the system's);
    AbiError with the compiler's diagnostics where they disagree."""
    headers = tuple(headers)
    with tempfile.TemporaryDirectory(prefix="nx-abi-") as tmp:
        path = Path(tmp) / "abi_check.c"
        path.write_text(check_source(cdef, headers))
        cmd = [os.environ.get("CC", "cc"), "-std=c11", "-fsyntax-only", "-Werror=incompatible-pointer-types",
               *(f"-I{d}" for d in include_dirs), *(f"-D{d}" for d in defines), str(path)]
        r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise AbiError(f"the declarations disagree with {', '.join(headers)}:\n{r.stderr[-6000:]}")


def find_header(name: str, dirs: Iterable[Path]) -> Path | None:
    """The first of ``dirs`` that holds ``name`` (a path such as ``hip/hiprtc.h``), or None."""
    return next((Path(d) for d in dirs if (Path(d) / name).is_file()), None)


def check_installed(backend: str, cdef: str, headers: Iterable[str], include_dirs: Iterable[Path],
                    defines: Iterable[str] = (), where: str = "") -> None:
    """:func:`check` where every header is found in ``include_dirs``; else skip the calling test saying which
    is missing and ``where`` to get it (fail, where NEURENIX_REQUIRE_BACKENDS names ``backend``)."""
    from . import skip_unless_required

    include_dirs = [Path(d) for d in include_dirs]
    for header in headers:
        if find_header(header, include_dirs) is None:
            skip_unless_required(backend, f"{header} not found in {[str(d) for d in include_dirs]}{where}")
    check(cdef, headers, include_dirs, defines)
