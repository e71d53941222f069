"""The recorded program: what it holds, core's replay of it, and the backend hook that may take it."""

import numpy as np
import pytest

import neurenix as nx
from neurenix.backend import Backend, hookimpl, register, unregister
from neurenix.capture.program import Const, Program, Value, replay


def _program():
    compiled = nx.compile(lambda a, b: ((a * b + 1.0).exp().sum() + a.sum() * 0).detach())
    a, b = nx.ones(3), nx.full((3,), 2.0)
    compiled(a, b)
    return compiled, compiled.programs()[0]


def test_a_program_lists_its_kernel_calls():
    _, program = _program()
    assert [i.name for i in program.instructions][:3] == ["mul", "add", "exp"]
    assert program.device_types() == {"cpu"}
    assert all(isinstance(v, Value) for v in program.inputs)
    assert "exp" in str(program) and program.kernel_counts()["mul"] >= 1
    mul = program.instructions[0]
    assert program.signatures[mul.out.index] == ((3,), np.dtype("float32"))


def test_replay_frees_each_buffer_after_its_last_use():
    _, program = _program()
    run = replay(program)
    source = run.__code__
    assert source.co_name == "run"
    a, b = np.ones(3, np.float32), np.full(3, 2.0, np.float32)
    (out,) = run([a, b])
    assert out == pytest.approx(3 * np.exp(3.0))


def test_prune_drops_what_nothing_reads():
    compiled = nx.compile(lambda a: ((a * 2), (a + 1).detach())[1])
    compiled(nx.ones(2))
    assert [i.name for i in compiled.programs()[0].instructions] == ["add"]


def test_constants_are_folded():
    compiled = nx.compile(lambda a: (a + nx.ones(2) * 3).detach())
    compiled(nx.ones(2))
    program = compiled.programs()[0]
    assert [i.name for i in program.instructions] == ["add"]
    assert isinstance(program.instructions[0].args[1], Const)


class _Taker(Backend):
    """A backend for cpu that has no kernels of its own but takes whole programs (or declines them)."""

    device_type, name, priority = "cpu", "program-taker", 100  # (asked before any other backend)

    def __init__(self, take: bool):
        self.take, self.runs = take, 0

    def kernels(self):
        return {}

    def compile_program(self, program: Program):
        if not self.take:
            return None
        core = replay(program)

        def run(inputs):
            self.runs += 1
            return core(inputs)
        return run


@pytest.mark.parametrize("take", [True, False])
def test_a_backend_may_take_the_whole_program(take):
    taker = _Taker(take)

    class Plugin:
        @hookimpl
        def neurenix_backends(self):
            return [taker]

    plugin = Plugin()
    register(plugin, "program-taker")
    try:
        compiled = nx.compile(lambda a: (a * 2).detach())
        for _ in range(3):
            np.testing.assert_array_equal(compiled(nx.ones(2)).numpy(), [2.0, 2.0])
        off = nx.compile(lambda a: (a * 2).detach(), backend=False)
        for _ in range(2):
            off(nx.ones(2))
    finally:
        unregister(plugin)
    assert taker.runs == (2 if take else 0)


def test_registering_a_backend_retraces():
    compiled = nx.compile(lambda a: (a * 2).detach())
    compiled(nx.ones(2))

    class Plugin:
        @hookimpl
        def neurenix_backends(self):
            return [_Taker(False)]

    plugin = Plugin()
    register(plugin, "program-decliner")
    try:
        compiled(nx.ones(2))
    finally:
        unregister(plugin)
    assert compiled.stats["traces"] == 2


def test_interpreting_equals_replaying_and_warming_switches_to_generated_code():
    from neurenix.capture.program import interpret, warming

    _, program = _program()
    a, b = np.ones(3, np.float32), np.full(3, 2.0, np.float32)
    assert interpret(program)([a, b]) == replay(program)([a, b])
    run = warming(program, interpreted=1)
    first, second = run([a, b]), run([a, b])
    assert first == second
