"""The webgpu backend's runner for programs that ``neurenix.compile`` recorded (``Backend.compile_program``).

Eager kernels plan shapes, allocate their results, pack parameters and make a bind group for every
dispatch at every call. A compiled program repeats the same dispatches each time, so this runner does
that work once:

1. The first call runs the program as core's replay would, kernel by kernel, while
   :meth:`Runtime.watching` lists each kernel's dispatches (pipeline, buffers, parameters, grid).
2. Every GPU buffer those dispatches touch is given a role: an input of the call, a constant of the
   program (or the status buffer), the result of a step that must run at every call (a host step, or a
   kernel whose dispatches cannot be repeated as they were), or an intermediate the program computes.
   Each intermediate gets a buffer of the runner's own, made once; inputs and step results that
   dispatches read are copied into buffers of the runner's own at every call, so all bind groups, and the
   parameters of every dispatch (one buffer), are made once.
3. Later calls enqueue, per stretch of dispatches between two such steps, one prepared item: the copies
   in, one compute pass of the dispatches with their bind groups, and (in the last) copies of the
   outputs into buffers made for that call, so that an output the caller holds is never overwritten by
   the next call. The runtime encodes a replay's items into the command encoder of its next submit,
   with the eager work around them: a replay submits nothing by itself, and a read submits all of it.

The dispatches are the eager ones (same pipelines, parameters, grids and order), on other buffers: the
results are bit for bit core's replay's.
"""

from __future__ import annotations

import functools
import threading
from collections import Counter

import numpy as np

from neurenix.capture.program import Const, Program, Value, bind, fill, values

from .runtime import Runtime, WebGPUBuffer

# roles of GPU buffers (keyed by id while planning)
INPUT, FIXED, STEP, OWN = "input", "fixed", "step", "own"


class ProgramRunner:
    """``run(inputs) -> outputs`` for one program: the first call watches, later calls replay the plan.

    ``info`` says what the plan holds once made: ``segments`` (prepared items per call), ``dispatches``,
    ``steps`` (instructions run at every call) of which ``fallbacks`` are kernels that could not be
    planned, ``buffers`` and ``bytes`` of the runner's own memory."""

    def __init__(self, rt: Runtime, program: Program):
        self.rt, self.program = rt, program
        self.plan: _Plan | None = None
        self.info: Counter = Counter()
        self._lock = threading.Lock()  # one call at a time: a call's items share the runner's buffers

    def __call__(self, inputs: list) -> list:
        with self._lock:
            if self.plan is None:
                return self._watch(inputs)
            return self.plan.run(inputs)

    def _watch(self, inputs: list) -> list:
        """Run the program kernel by kernel, listing each kernel's dispatches, then make the plan."""
        rt, program = self.rt, self.program
        env = {v.index: b for v, b in zip(program.inputs, inputs)}
        watched: list = []  # per instruction: its dispatches, or None if it runs at every call
        for ins in program.instructions:
            args = fill(ins.args, lambda v: env[v.index])
            if ins.host:
                result, items = ins.fn(*args), None
            else:
                before = (rt.stats["host_waits"], rt.stats["uploads"])
                with rt.watching() as items:
                    result = ins.fn(*args)
                if (rt.stats["host_waits"], rt.stats["uploads"]) != before:
                    items = None  # it read the device or uploaded host data: its dispatches may differ next time
            bind(ins.out, result, env)
            watched.append(items)
        outputs = [fill(o, lambda v: env[v.index]) for o in program.outputs]
        self.plan = _Plan(rt, program, env, watched, self.info)
        return outputs


class _Plan:
    """What a replay runs: ``steps``, each a prepared :class:`_Segment` or an instruction run at every call."""

    def __init__(self, rt: Runtime, program: Program, env: dict, watched: list, info: Counter):
        self.rt, self.program, self.info = rt, program, info
        self.shapes = {i: (b.shape, b.dtype) for i, b in env.items() if isinstance(b, WebGPUBuffer)}
        self.roles: dict = {}  # id(gpu) -> (role, detail)
        self.keep: dict = {}  # id(gpu) -> gpu: the ids stay valid while planning
        self.own: dict = {}  # id(gpu) -> the runner's buffer standing for it
        self.params: list = []  # per planned dispatch: its parameter words
        self.steps: list = []
        self.copied_in: set = set()  # ids of inputs and steps' results that an earlier segment copies in
        self.copied_out: set = set()  # Values that a replay holds in a buffer of its own (copied out, or the call's)
        self._roles_of_inputs_and_constants(env)
        self._plan_instructions(env, watched)
        self._copy_out(self.steps[-1], [o for o in program.outputs if isinstance(o, Value)], env)
        self._plan_views(env)
        self._bind_groups()
        self.keep = {}  # (the watched call's buffers are no longer needed)

    # -- roles -------------------------------------------------------------------------------------
    def _role(self, gpu, role, detail=None) -> None:
        if id(gpu) not in self.roles:
            self.roles[id(gpu)] = (role, detail)
            self.keep[id(gpu)] = gpu

    def _roles_of_inputs_and_constants(self, env: dict) -> None:
        for pos, v in enumerate(self.program.inputs):
            self.copied_out.add(v.index)
            if isinstance(env[v.index], WebGPUBuffer):
                self._role(env[v.index].gpu, INPUT, pos)
        self._role(self.rt.status, FIXED, self.rt.status)
        for ins in self.program.instructions:
            for c in values(ins.args, Const):
                if isinstance(c.buffer, WebGPUBuffer):
                    self._role(c.buffer.gpu, FIXED, c.buffer.gpu)

    def _plannable(self, items) -> bool:
        """Whether ``items`` (one kernel's dispatches) can be repeated on the runner's buffers: each reads
        buffers whose role is known (or that the kernel wrote before) and writes only buffers of its own."""
        written: set = set()
        for _, _, _, buffers, _, _ in items:
            out = buffers[0]
            if self.roles.get(id(out), (OWN,))[0] != OWN:
                return False  # it writes an input, a constant or a step's result in place
            written.add(id(out))
            if any(id(b) not in self.roles and id(b) not in written for b in buffers[1:]):
                return False  # it reads a buffer made outside the program
        return True

    def _plan_instructions(self, env: dict, watched: list) -> None:
        segment = _Segment(self)
        for ins, items in zip(self.program.instructions, watched):
            if items is not None and self._plannable(items):
                for item in items:
                    self._role(item[3][0], OWN)
                    segment.dispatch(item)
                for v in values(ins.out, Value):  # results made without a dispatch (empty): the runner's too
                    if isinstance(env[v.index], WebGPUBuffer):
                        self._role(env[v.index].gpu, OWN)
                continue
            self.info["steps"] += 1
            self.info["fallbacks"] += not ins.host
            # a step may keep what it reads past the call (a queued bounds check reads it at the next
            # synchronisation): it reads copies, not the runner's buffers, which the next call overwrites
            self._copy_out(segment, list(values(ins.args, Value)), env)
            self.steps += [segment, ins]
            segment = _Segment(self)
            for v in values(ins.out, Value):
                self.copied_out.add(v.index)
                if isinstance(env[v.index], WebGPUBuffer):
                    self._role(env[v.index].gpu, STEP, v.index)
        self.steps.append(segment)

    def buffer(self, gpu):
        """The runner's buffer for ``gpu``: made once (constants are bound as they are)."""
        role = self.roles[id(gpu)][0]
        if role == FIXED:
            return gpu
        own = self.own.get(id(gpu))
        if own is None:
            own = self.own[id(gpu)] = self.rt.device.create_buffer(size=gpu.size, usage=self.rt.usage)
            self.info["buffers"] += 1
            self.info["bytes"] += gpu.size
        return own

    def _copy_out(self, segment: _Segment, wanted: list, env: dict) -> None:
        """Have ``segment`` copy the Values of ``wanted`` that live in the runner's buffers into buffers made
        for the call (one copy per GPU buffer, however many Values view it)."""
        for v in wanted:
            b = env.get(v.index)
            if v.index in self.copied_out or not isinstance(b, WebGPUBuffer) or self.roles[id(b.gpu)][0] != OWN:
                continue
            self.copied_out.add(v.index)
            segment.copy_out(self.buffer(b.gpu), b.gpu.size, v.index, *self.shapes[v.index])

    def _plan_views(self, env: dict) -> None:
        """Where the other Values that steps and outputs read live during a replay: over an input's, a step
        result's or a constant's memory (reshapes of them)."""
        wanted = {v.index for ins in self.steps if not isinstance(ins, _Segment) for v in values(ins.args, Value)}
        wanted |= {o.index for o in self.program.outputs if isinstance(o, Value)}
        self.views = {}
        for i in wanted - self.copied_out:
            if isinstance(env.get(i), WebGPUBuffer):
                role, detail = self.roles[id(env[i].gpu)]
                self.views[i] = (role, detail, *self.shapes[i])

    def value(self, v: Value, inputs: list, env: dict):
        """Value ``v`` during a replay: the call's own buffer (an input, a step's result, a copy out), or one
        over the same memory (a reshape of an input, of a step's result or of a constant)."""
        if v.index in env:
            return env[v.index]
        role, where, shape, dtype = self.views[v.index]
        gpu = inputs[where].gpu if role == INPUT else env[where].gpu if role == STEP else where
        return WebGPUBuffer(gpu, shape, dtype)

    # -- bind groups, made once ------------------------------------------------------------------------
    def _bind_groups(self) -> None:
        rt = self.rt
        offsets, chunks, at = [], [], 0
        for words in self.params:
            size = -(-max(len(words), 1) // rt.align) * rt.align
            chunk = np.zeros(size, np.uint32)
            chunk[:len(words)] = words
            offsets.append(at)
            chunks.append(chunk)
            at += size
        pbuf = rt.device.create_buffer_with_data(data=np.concatenate(chunks), usage=rt.wgpu.BufferUsage.STORAGE) \
            if chunks else None
        for step in self.steps:
            if isinstance(step, _Segment):
                step.finish(pbuf, offsets)
                self.info["segments"] += step.busy
                self.info["dispatches"] += len(step.passes)

    # -- a replay --------------------------------------------------------------------------------------
    def run(self, inputs: list) -> list:
        env: dict = {v.index: b for v, b in zip(self.program.inputs, inputs)}
        for step in self.steps:
            if isinstance(step, _Segment):
                if step.busy:
                    step.enqueue(inputs, env)
            else:
                bind(step.out, step.fn(*fill(step.args, lambda v: self.value(v, inputs, env))), env)
        return [fill(o, lambda v: self.value(v, inputs, env)) for o in self.program.outputs]


class _Segment:
    """Dispatches between two steps, with the copies into the runner's buffers they need first (inputs,
    steps' results), and the copies out of what the next step or the caller is handed."""

    def __init__(self, plan: _Plan):
        self.plan = plan
        self.items: list = []  # (pipeline, bind group layout, bound buffers, grid, params index, param words)
        self.copies_in: dict = {}  # id(gpu) -> (role, detail, own buffer, bytes)
        self.copies_out: list = []  # (own buffer, bytes, [(Value index, shape, dtype)])
        self._out_at: dict = {}  # id(own buffer) -> position in copies_out

    def dispatch(self, item) -> None:
        plan = self.plan
        pipeline, nbuf, status, buffers, params, grid = item
        for b in buffers:
            role, detail = plan.roles[id(b)]
            if role in (INPUT, STEP) and id(b) not in plan.copied_in:
                plan.copied_in.add(id(b))
                self.copies_in[id(b)] = (role, detail, plan.buffer(b), b.size)
        plan.params.append(params)
        self.items.append((pipeline, plan.rt.layout(nbuf, status)[0], [plan.buffer(b) for b in buffers], grid,
                           len(plan.params) - 1, max(len(params), 1)))

    def copy_out(self, own, nbytes: int, index: int, shape: tuple, dtype) -> None:
        at = self._out_at.setdefault(id(own), len(self.copies_out))
        if at == len(self.copies_out):
            self.copies_out.append((own, nbytes, []))
        self.copies_out[at][2].append((index, shape, dtype))

    def finish(self, pbuf, offsets: list) -> None:
        """Make the bind groups, once the parameters of every dispatch are in ``pbuf``."""
        device = self.plan.rt.device
        self.passes = []
        for pipeline, layout, bound, grid, p, words in self.items:
            entries = [{"binding": 0, "resource": {"buffer": pbuf, "offset": 4 * offsets[p], "size": 4 * words}}]
            entries += [{"binding": i + 1, "resource": {"buffer": b, "offset": 0, "size": b.size}}
                        for i, b in enumerate(bound)]
            self.passes.append((pipeline, device.create_bind_group(layout=layout, entries=entries), grid))
        self.items = []
        self.copies_in = list(self.copies_in.values())
        self.busy = bool(self.passes or self.copies_in or self.copies_out)

    def enqueue(self, inputs: list, env: dict) -> None:
        """Record this segment for the call: the buffers it copies out are made now, and put in ``env``."""
        rt = self.plan.rt
        sources = [inputs[d].gpu if role == INPUT else env[d].gpu for role, d, _, _ in self.copies_in]
        fresh = []
        for _, nbytes, views in self.copies_out:
            gpu = rt.device.create_buffer(size=nbytes, usage=rt.usage)
            fresh.append(gpu)
            for index, shape, dtype in views:
                env[index] = WebGPUBuffer(gpu, shape, dtype)
        rt.enqueue(functools.partial(self.encode, sources, fresh))

    def encode(self, sources: list, fresh: list, enc) -> None:
        for src, (_, _, own, nbytes) in zip(sources, self.copies_in):
            enc.copy_buffer_to_buffer(src, 0, own, 0, nbytes)
        if self.passes:
            cpass = enc.begin_compute_pass()
            for pipeline, group, grid in self.passes:
                cpass.set_pipeline(pipeline)
                cpass.set_bind_group(0, group)
                cpass.dispatch_workgroups(*grid)
            cpass.end()
        for (own, nbytes, _), dst in zip(self.copies_out, fresh):
            enc.copy_buffer_to_buffer(own, 0, dst, 0, nbytes)
