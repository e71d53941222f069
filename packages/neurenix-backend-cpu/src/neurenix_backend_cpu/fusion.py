"""Fusing a program's elementwise chains into generated C loops.

Planning works on a program whose buffers' signatures (type, shape, dtype, strides) were seen in one run
(see ``compiler``). Elementwise instructions on float32/float64 arrays (add, sub, mul, div, neg, relu,
relu_backward, and expand as a broadcast read) join the group of the instruction that uses their result,
when that is its only reader, it is not a program output and its shape is the group's. Each group becomes one
C function: one loop over the group's output, every member computed in a local of the buffers' type, in
program order, with the arithmetic each kernel does (no FMA contraction: see ``jit.CFLAGS``), so a fused
chain gives the unfused chain's bits.
"""

from __future__ import annotations

import math

import numpy as np

from neurenix.capture.program import Const, Instruction, Value

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
CTYPE = {F32: "float", F64: "double"}

#: name -> C expression of its operands (a, b); relu and relu_backward as the backend's own C kernels
OPS = {"add": "{0} + {1}", "sub": "{0} - {1}", "mul": "{0} * {1}", "div": "{0} / {1}", "neg": "-{0}",
       "relu": "({0} > 0 ? {0} : ({0} != {0} ? {0} : ({T})0))", "relu_backward": "({1} > 0 ? {0} : ({T})0)",
       "expand": "{0}"}
ARITY = {"neg": 1, "relu": 1, "expand": 1}
#: below this many elements a group runs on one thread (waking OpenMP's team costs more)
PAR_MIN = 65536


class Group:
    """Instructions fused into one loop: ``members`` in program order, the last one's result is the output."""

    def __init__(self, root: int):
        self.members = [root]
        self.root = root


def plan(instructions: list, sigs: dict, trusted: set, outputs: set) -> list[Group]:
    """The groups of fusable instructions (indices into ``instructions``), groups of one included."""
    uses: dict[int, set] = {}
    for n, ins in enumerate(instructions):
        for v in _buffers(ins.args):
            if isinstance(v, Value):
                uses.setdefault(v.index, set()).add(n)
    group_of: dict[int, Group] = {}
    groups = []
    for n in range(len(instructions) - 1, -1, -1):
        ins = instructions[n]
        if not _fusable(ins, instructions, sigs, trusted):
            continue
        out = ins.out.index
        readers = uses.get(out, set())
        owners = {id(group_of.get(r)) for r in readers}
        first = group_of.get(next(iter(readers))) if readers else None
        if out not in outputs and first is not None and len(owners) == 1 and \
                sigs[instructions[first.root].out.index][1] == sigs[out][1]:
            first.members.append(n)
            group_of[n] = first
        else:
            group_of[n] = Group(n)
            groups.append(group_of[n])
    for g in groups:
        g.members.sort()
    return groups[::-1]


def _buffers(args) -> list:
    if isinstance(args, (Value, Const)):
        return [args]
    if type(args) in (tuple, list):
        return [b for a in args for b in _buffers(a)]
    return []


def _fusable(ins: Instruction, instructions: list, sigs: dict, trusted: set) -> bool:
    """Whether ``ins`` is an elementwise kernel the generated loop computes exactly as it does."""
    if ins.host or ins.name not in OPS or not isinstance(ins.out, Value):
        return False
    sig = sigs.get(ins.out.index)
    if sig is None or sig[0] is not np.ndarray or sig[2] not in CTYPE or not _contiguous(sig):
        return False
    args = ins.args[:1] if ins.name == "expand" else ins.args
    if len(args) != ARITY.get(ins.name, 2):
        return False
    arrays = 0
    for a in args:
        if isinstance(a, (Value, Const)):
            if _operand(a, ins, instructions, sigs, trusted) is None:
                return False
            arrays += 1
        elif not _literal(a):
            return False
    return arrays > 0


def _literal(x) -> bool:
    """A Python number the loop can write exactly (NumPy casts it to the array's dtype, as C does)."""
    if type(x) is float:
        return math.isfinite(x)
    return type(x) is int and abs(x) <= 1 << 53


def _contiguous(sig) -> bool:
    return sig[3] == _c_strides(sig[1], sig[2].itemsize)


def _c_strides(shape: tuple, size: int) -> tuple:
    out, acc = [], size
    for s in reversed(shape):
        out.append(acc)
        acc *= max(s, 1)
    return tuple(reversed(out))


def _sig(x, sigs: dict):
    return sigs.get(x.index if isinstance(x, Value) else ("const", id(x)))


def _operand(x, ins: Instruction, instructions: list, sigs: dict, trusted: set):
    """``(buffer read, element strides, shape)`` for array operand ``x`` of ``ins``, or None when the loop
    cannot read it: another dtype, not broadcastable, or neither contiguous nor a permuted contiguous buffer
    (read in place through its strides; not for relu, whose NumPy path may differ on -0.0)."""
    if isinstance(x, Value) and x.index not in trusted:
        return None
    sig, out = _sig(x, sigs), sigs[ins.out.index]
    if sig is None or sig[0] is not np.ndarray or sig[2] != out[2] or not _broadcasts(sig[1], out[1]):
        return None
    if _contiguous(sig):
        return x, tuple(s // sig[2].itemsize for s in sig[3]), sig[1]
    src = _permuted_source(x, instructions, sigs, trusted)
    if src is None or ins.name == "relu":
        return None
    return src, tuple(s // sig[2].itemsize for s in sig[3]), sig[1]


def _permuted_source(x, instructions: list, sigs: dict, trusted: set):
    """The contiguous buffer whose permute made ``x`` (a view at the same address), or None."""
    if not isinstance(x, Value):
        return None
    for ins in instructions:  # (programs are short and this runs once per program)
        if isinstance(ins.out, Value) and ins.out.index == x.index:
            if ins.name != "permute" or ins.host or not isinstance(ins.args[0], (Value, Const)):
                return None
            src = ins.args[0]
            sig = _sig(src, sigs)
            if (isinstance(src, Value) and src.index not in trusted) or sig is None or sig[0] is not np.ndarray \
                    or not _contiguous(sig):
                return None
            return src
    return None


def _broadcasts(shape: tuple, out: tuple) -> bool:
    if len(shape) > len(out):
        return False
    return all(s == o or s == 1 for s, o in zip(shape[::-1], out[::-1]))


class Source:
    """The C source of one program's groups, and for each group how to call it."""

    def __init__(self, instructions: list, sigs: dict, trusted: set):
        self.instructions, self.sigs, self.trusted = instructions, sigs, trusted
        self.cdefs: list[str] = []
        self.bodies: list[str] = []
        self.calls: list = []  # (function name, operand buffers, output shape, dtype)

    def add(self, group: Group) -> None:
        """Write the C function of ``group``."""
        instructions, sigs = self.instructions, self.sigs
        root = instructions[group.root]
        shape, dtype = sigs[root.out.index][1], sigs[root.out.index][2]
        t = CTYPE[dtype]
        local = {instructions[m].out.index: f"t{m}" for m in group.members}
        operands: list = []  # (buffer, strides): one pointer parameter each
        slots: dict = {}
        lines = []
        for m in group.members:
            ins = instructions[m]
            args = ins.args[:1] if ins.name == "expand" else ins.args
            exprs = [self._read(a, ins, shape, local, operands, slots, t) for a in args]
            lines.append(f"{t} t{m} = {OPS[ins.name].format(*exprs, T=t)};")
        name = f"g{len(self.calls)}"
        params = ", ".join([f"const {t} *restrict p{i}" for i in range(len(operands))] + [f"{t} *restrict o"])
        # declared to cffi with void pointers: ffi.from_buffer gives char *, which cffi casts only to void *
        self.cdefs.append(f"void {name}({', '.join(['const void *'] * len(operands) + ['void *'])});")
        self.bodies.append(_function(name, params, shape, [s for _, s in operands], lines, f"t{group.root}"))
        self.calls.append((name, [b for b, _ in operands], shape, dtype))

    def _read(self, a, ins, shape, local, operands, slots, t) -> str:
        """The C expression reading argument ``a`` of member ``ins``: a local, a literal, or an operand."""
        if isinstance(a, Value) and a.index in local:
            return local[a.index]
        if not isinstance(a, (Value, Const)):
            return f"(({t}){float(a).hex()})"  # hexadecimal: the double exactly, rounded to T as NumPy does
        buf, strides, ashape = _operand(a, ins, self.instructions, self.sigs, self.trusted)
        full = _aligned(strides, ashape, shape)
        key = (id(buf) if isinstance(buf, Const) else buf.index, full)
        if key not in slots:
            slots[key] = len(operands)
            operands.append((buf, full))
        return f"p{slots[key]}[IDX{slots[key]}]"


def _aligned(strides: tuple, shape: tuple, out: tuple) -> tuple:
    """Element strides of an operand over the output's axes: 0 where it is broadcast."""
    pad = len(out) - len(shape)
    return tuple(0 if i < pad or shape[i - pad] == 1 else strides[i - pad] for i in range(len(out)))


def _collapse(shape: tuple, strides: list) -> tuple[list, list]:
    """Drop axes of size 1 and merge neighbours that every operand (and the contiguous output) walks as one."""
    dims, cols = [], [[] for _ in strides]
    out = _c_strides(shape, 1)
    for k, d in enumerate(shape):
        if d == 1:
            continue
        if dims and all(c[-1] == s[k] * d for c, s in zip(cols, strides)) and dims[-1][1] == out[k] * d:
            dims[-1] = (dims[-1][0] * d, out[k])
            for c, s in zip(cols, strides):
                c[-1] = s[k]
        else:
            dims.append((d, out[k]))
            for c, s in zip(cols, strides):
                c.append(s[k])
    return [d for d, _ in dims], cols


def _function(name: str, params: str, shape: tuple, strides: list, lines: list, result: str) -> str:
    sizes, cols = _collapse(shape, strides)
    n = math.prod(shape)
    idx = [f"#define IDX{i} ({' + '.join(f'i{k} * {s}LL' for k, s in enumerate(c) if s) or '0'})"
           for i, c in enumerate(cols)]
    flat = " + ".join(f"i{k} * {math.prod(sizes[k + 1:])}LL" for k in range(len(sizes))) or "0"
    loops = [f"for (int64_t i{k} = 0; i{k} < {d}LL; i{k}++)" for k, d in enumerate(sizes)]
    if loops and n >= PAR_MIN:
        loops[0] = f"_Pragma(\"omp parallel for schedule(static)\")\n    {loops[0]}"
    body = "\n        ".join(lines + [f"o[{flat}] = {result};"])
    undef = [f"#undef IDX{i}" for i in range(len(cols))]
    return "\n".join(idx + [f"void {name}({params}) {{", *(f"    {lp}" for lp in loops),
                            f"    {{\n        {body}\n    }}", "}", *undef])
