"""``CpuBackend.compile_program``: a runner that fuses a program's elementwise chains into generated C.

A program names its buffers but not their shapes, so the runner learns them from its first run: core's
replay runs with every result's signature (type, shape, dtype, strides) noted. Signatures follow from the
inputs' (every kernel's result layout is a function of its operands' and of its other arguments), except
after host steps, whose results are never fused over. The runner then plans groups (``fusion``), compiles
their C once (``jit``: cached on disk) and rewrites the program: each group becomes one instruction calling
its C function; permutes only a group read are dropped (the loop reads through their strides). Core's
``replay`` generates the Python that runs the rewritten program. Later calls whose inputs' signatures differ
from the first run's, and every call if planning or compiling failed, replay the program as it is.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np

from neurenix.capture.program import Const, Instruction, Program, Value, replay, values

from . import fusion, jit


def signature(x):
    """What a fused loop relies on: type, shape, dtype and strides (None for what is not a buffer)."""
    if isinstance(x, (np.ndarray, np.generic)):
        return type(x), x.shape, x.dtype, x.strides
    return None


class Runner:
    """``run(inputs) -> outputs`` for one program: core's replay until the first run showed the signatures,
    then the fused program for inputs like the first run's."""

    def __init__(self, program: Program):
        self.program = program
        self.plain = replay(program)
        self.fast = None
        self.expected: list | None = None
        self.groups = 0  # how many fused loops the fast runner calls (0 until planned)
        self.steps = len(program.instructions)  # instructions the fast runner runs
        self._done = False
        self._lock = threading.Lock()

    def __call__(self, inputs: list) -> list:
        if self.fast is not None:
            if [signature(x) for x in inputs] == self.expected:
                return self.fast(inputs)
            return self.plain(inputs)
        if self._done:
            return self.plain(inputs)
        with self._lock:
            if self._done:
                return self.plain(inputs)
            sigs: dict = {}
            outputs = _observed(self.program, sigs)(inputs)
            try:
                self._build(inputs, sigs)
            except Exception as e:  # (a compiler error, say): every call replays the program as it is
                warnings.warn(f"cpu-c could not fuse a compiled program ({type(e).__name__}: {e}); it runs kernel "
                              "by kernel", RuntimeWarning, stacklevel=2)
            self._done = True
            return outputs

    def _build(self, inputs: list, sigs: dict) -> None:
        program = self.program
        for v, x in zip(program.inputs, inputs):
            sigs[v.index] = signature(x)
        for c in _consts(program):
            sigs[("const", id(c))] = signature(c.buffer)
        trusted = _trusted(program)
        outputs = {v.index for v in program.outputs if isinstance(v, Value)}
        groups = [g for g in fusion.plan(program.instructions, sigs, trusted, outputs) if _pays(g, program)]
        if groups:
            rewritten = _rewrite(program, groups, sigs, trusted)
            self.fast = replay(rewritten)
            self.steps = len(rewritten.instructions)
            self.expected = [signature(x) for x in inputs]
            self.groups = len(groups)


def _pays(group: fusion.Group, program: Program) -> bool:
    """Whether a group saves calls: one kernel alone is no faster as a generated loop than as its kernel."""
    return len(group.members) > 1 or program.instructions[group.root].name in ("expand", "relu_backward")


def _observed(program: Program, sigs: dict):
    """Core's replay of ``program``, noting each result's signature into ``sigs``."""
    def note(fn, out):
        def kernel(*args):
            result = fn(*args)
            for v, r in zip(values(out), _flat(result) if not isinstance(out, Value) else [result]):
                sigs[v.index] = signature(r)
            return result
        return kernel

    instructions = [Instruction(i.name, note(i.fn, i.out), i.args, i.out, i.host, i.device_type)
                    for i in program.instructions]
    return replay(Program(program.inputs, instructions, program.outputs))


def _flat(result) -> list:
    """A result's buffers in the order ``values`` lists its Values (Nones and non-buffers skipped alike)."""
    if type(result) in (tuple, list):
        return [b for r in result for b in _flat(r)]
    return [] if result is None else [result]


def _consts(program: Program) -> list:
    seen = {}

    def visit(x):
        if isinstance(x, Const):
            seen[id(x)] = x
        elif type(x) in (tuple, list):
            for e in x:
                visit(e)

    for ins in program.instructions:
        visit(ins.args)
    return list(seen.values())


def _trusted(program: Program) -> set:
    """Values whose signatures a later run repeats when its inputs' do: the inputs, and results of kernels
    (not host steps) that read only such values and constants."""
    trusted = {v.index for v in program.inputs}
    for ins in program.instructions:
        if not ins.host and all(v.index in trusted for v in values(ins.args)):
            trusted.update(v.index for v in values(ins.out))
    return trusted


def _rewrite(program: Program, groups: list, sigs: dict, trusted: set) -> Program:
    """``program`` with each group one instruction (at its last member's place), its fused loops compiled."""
    source = fusion.Source(program.instructions, sigs, trusted)
    for g in groups:
        source.add(g)
    module = jit.load("\n".join(source.cdefs), "#include <stdint.h>\n" + "\n".join(source.bodies))
    at = {g.root: (g, call) for g, call in zip(groups, source.calls)}
    gone = {m for g in groups for m in g.members}
    instructions = []
    for n, ins in enumerate(program.instructions):
        if n in at:
            g, (name, operands, shape, dtype) = at[n]
            fn = _caller(getattr(module.lib, name), module.ffi.from_buffer, shape, dtype, len(operands))
            instructions.append(Instruction("fused", fn, tuple(operands), ins.out, False, ins.device_type))
        elif n not in gone:
            instructions.append(ins)
    return Program(program.inputs, instructions, program.outputs).prune()


def _caller(cfn, ptr, shape: tuple, dtype, arity: int):
    """The Python side of one fused loop: a fresh output, pointers, the call."""
    empty = np.empty
    if arity == 1:
        def run(a):
            out = empty(shape, dtype)
            cfn(ptr(a), ptr(out))
            return out
    elif arity == 2:
        def run(a, b):
            out = empty(shape, dtype)
            cfn(ptr(a), ptr(b), ptr(out))
            return out
    else:
        def run(*xs):
            out = empty(shape, dtype)
            cfn(*[ptr(x) for x in xs], ptr(out))
            return out
    return run


def compile_program(program: Program):
    """A :class:`Runner` for ``program``, or None where it holds nothing to fuse (no elementwise kernels)."""
    if not any(ins.name in fusion.OPS and not ins.host for ins in program.instructions):
        return None
    return Runner(program)
