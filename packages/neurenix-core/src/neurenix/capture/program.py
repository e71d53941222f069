"""A recorded program, and core's replay of it.

A program is straight-line: ``instructions`` in the order eager ran them, each a kernel call (or a host
step) whose arguments refer to earlier results by :class:`Value`. Its inputs are the buffers the call read
from its arguments' tensors, in the order of ``Program.inputs``; it returns the buffers named by
``outputs``. A backend's ``compile_program`` hook receives this object and may return its own runner;
``replay`` is core's: generated Python that calls each kernel in turn, with no tensors, graph or dispatch,
and drops each buffer after its last use (so a replay holds no more memory than the eager step did).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Value:
    """The ``index``-th buffer of a program: an input, or a result of an instruction."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index

    def __repr__(self) -> str:
        return f"%{self.index}"


class Const:
    """A buffer the program holds as it is (made from host data, or from constants only, while tracing)."""

    __slots__ = ("buffer",)

    def __init__(self, buffer):
        self.buffer = buffer

    def __repr__(self) -> str:
        return f"const{tuple(self.buffer.shape)}"


@dataclass
class Instruction:
    """One call: ``out = fn(*args)``. ``name`` is the kernel's name (``"add"``, ``"matmul"``...) or the host
    function's; ``args`` hold :class:`Value`/:class:`Const` in place of buffers (also inside tuples and
    lists), other arguments as eager passed them; ``out`` is a Value, None, or a tuple/list of them. Host
    steps (``host=True``: index checks, random draws) have effects besides their result and always run."""

    name: str
    fn: Callable
    args: tuple
    out: Any
    host: bool = False
    device_type: str | None = None


@dataclass
class Program:
    """What ``neurenix.compile`` recorded: inputs, instructions, outputs (see the module docstring)."""

    inputs: list[Value]
    instructions: list[Instruction]
    outputs: list[Value | Const] = field(default_factory=list)
    #: Value index -> (shape, dtype) of the buffer it held while tracing (every call replayed has the same:
    #: the guards see to it), so that a backend can plan a program before running it
    signatures: dict[int, tuple] = field(default_factory=dict)

    def device_types(self) -> set[str]:
        return {i.device_type for i in self.instructions if i.device_type is not None}

    def kernel_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for i in self.instructions:
            counts[i.name] = counts.get(i.name, 0) + 1
        return counts

    def prune(self) -> Program:
        """The program without instructions whose results nothing uses (host steps stay)."""
        live = {v.index for v in self.outputs if isinstance(v, Value)}
        kept = []
        for ins in reversed(self.instructions):
            if ins.host or any(v.index in live for v in values(ins.out)):
                kept.append(ins)
                live.update(v.index for v in values(ins.args))
        return Program(self.inputs, kept[::-1], self.outputs, self.signatures)

    def __str__(self) -> str:
        lines = [f"program({', '.join(map(repr, self.inputs))}):"]
        lines += [f"  {ins.out!r} = {ins.name}{ins.args!r}" for ins in self.instructions]
        lines.append(f"  return {self.outputs!r}")
        return "\n".join(lines)


def values(tree, kind: type = Value) -> list:
    """The Values (or the items of ``kind``: ``Const``) in an argument or result structure."""
    if isinstance(tree, kind):
        return [tree]
    if type(tree) in (tuple, list):
        return [v for x in tree for v in values(x, kind)]
    return []


def fill(tree, lookup: Callable):
    """An argument structure with each Value replaced by ``lookup(value)`` and each Const by its buffer: the
    arguments to call an instruction's ``fn`` with (for runners that call some instructions as they are)."""
    if isinstance(tree, Value):
        return lookup(tree)
    if isinstance(tree, Const):
        return tree.buffer
    if type(tree) in (tuple, list):
        return type(tree)(fill(x, lookup) for x in tree)
    return tree


def bind(out, result, env: dict) -> None:
    """Store an instruction's ``result`` in ``env`` (Value index -> buffer) under the Values of its ``out``."""
    if isinstance(out, Value):
        env[out.index] = result
    elif type(out) in (tuple, list):
        for o, r in zip(out, result):
            bind(o, r, env)


def replay(program: Program) -> Callable[[list], list]:
    """Core's runner for ``program``: ``run(inputs) -> outputs``, generated Python source compiled once
    (Python's compiler takes about 35 us a line: see ``warming``)."""
    namespace: dict[str, Any] = {}
    freed = _freed(program)
    lines = ["def run(inputs):"]
    if program.inputs:
        lines.append(f"    {', '.join(_name(v) for v in program.inputs)}, = inputs")
    for n, ins in enumerate(program.instructions):
        namespace[f"f{n}"] = ins.fn
        call = f"f{n}({', '.join(_expr(a, namespace) for a in ins.args)})"
        lines += _assign(ins.out, call, n)
        dead = sorted(freed.get(n, ()))
        if dead:
            lines.append(f"    del {', '.join(f's{i}' for i in dead)}")
    lines.append(f"    return [{', '.join(_expr(v, namespace) for v in program.outputs)}]")
    exec(compile("\n".join(lines), f"<neurenix program of {len(program.instructions)} steps>", "exec"), namespace)
    return namespace["run"]


def interpret(program: Program) -> Callable[[list], list]:
    """A runner for ``program`` that walks its instructions (no code generated: cheaper to make, about 1 us a
    kernel slower to run than ``replay``'s)."""
    freed = _freed(program)
    steps = [(ins.fn, ins.args, ins.out, tuple(freed.get(n, ()))) for n, ins in enumerate(program.instructions)]
    inputs_at = [v.index for v in program.inputs]

    def run(inputs: list) -> list:
        env = dict(zip(inputs_at, inputs))
        lookup = lambda v: env[v.index]  # noqa: E731
        for fn, args, out, freed in steps:
            bind(out, fn(*fill(args, lookup)), env)
            for slot in freed:
                env.pop(slot, None)
        return [fill(v, lookup) for v in program.outputs]
    return run


def warming(program: Program, interpreted: int = 2) -> Callable[[list], list]:
    """``interpret`` for the first ``interpreted`` runs, then ``replay``: a program used once or twice never pays
    for its code, and the trace that recorded it does not either."""
    calls = [0]
    run = [interpret(program)]

    def warm(inputs: list) -> list:
        calls[0] += 1
        if calls[0] == interpreted + 1:
            run[0] = replay(program)
        return run[0](inputs)
    return warm


def _freed(program: Program) -> dict[int, list[int]]:
    """Instruction -> the slots it reads or makes for the last time."""
    freed: dict[int, list[int]] = {}
    for slot, last in _last_uses(program).items():
        freed.setdefault(last, []).append(slot)
    return freed


def _last_uses(program: Program) -> dict[int, int]:
    """Slot -> the instruction after which it is no longer needed (slots that are outputs are never freed;
    results nobody reads are freed at once)."""
    kept = {v.index for v in program.outputs if isinstance(v, Value)}
    last: dict[int, int] = {}
    for n, ins in enumerate(program.instructions):
        for v in values(ins.args):
            if v.index not in kept:
                last[v.index] = n
        for v in values(ins.out):
            if v.index not in kept:
                last[v.index] = n
    return last


def _name(v: Value) -> str:
    return f"s{v.index}"


def _expr(x, namespace: dict) -> str:
    """Python source for argument ``x``: a slot name, a tuple or list of expressions, an int literal, or a
    constant kept in ``namespace``."""
    if isinstance(x, Value):
        return _name(x)
    if isinstance(x, Const):
        return _constant(x.buffer, namespace)
    if type(x) in (tuple, list) and any(isinstance(e, (Value, Const)) for e in _flat(x)):
        body = ", ".join(_expr(e, namespace) for e in x)
        return f"({body},)" if type(x) is tuple else f"[{body}]"
    if type(x) is int or x is None or type(x) is bool:
        return repr(x)
    return _constant(x, namespace)


def _flat(x) -> list:
    return [e for y in x for e in _flat(y)] if type(x) in (tuple, list) else [x]


def _constant(x, namespace: dict) -> str:
    name = f"c{len(namespace)}"
    namespace[name] = x
    return name


def _assign(out, call: str, n: int) -> list[str]:
    if out is None:
        return [f"    {call}"]
    if isinstance(out, Value):
        return [f"    {_name(out)} = {call}"]
    if type(out) in (tuple, list) and all(e is None or isinstance(e, Value) for e in out):
        targets = ", ".join(_name(e) if isinstance(e, Value) else "_" for e in out)
        return [f"    {targets}, = {call}"] if out else [f"    {call}"]
    lines = [f"    o{n} = {call}"]
    lines += [f"    {_name(v)} = o{n}{path}" for path, v in _paths(out, "")]
    return lines + [f"    del o{n}"]


def _paths(out, prefix: str):
    if isinstance(out, Value):
        yield prefix, out
    elif type(out) in (tuple, list):
        for i, e in enumerate(out):
            yield from _paths(e, f"{prefix}[{i}]")
