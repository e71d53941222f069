"""``meta_learn``'s checkpoints: what they hold beyond the weights, and the checks on resuming from one.

A progress checkpoint's metadata is ``{"epoch": epochs done, "history": {"loss": [...], ...}, "rng":
neurenix's random state, "settings": {"meta_learn": the learner's and the loop's settings, "run": the
caller's}}``. Resuming checks all of it against the run that resumes before anything changes: a file
altered by hand, or saved by a run with other settings, is refused with the difference named, since
continuing it would silently give another run than the one asked for.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
from collections.abc import Mapping
from typing import Any

import neurenix as nx
from neurenix.nn import Module
from neurenix.optim import Optimizer

from .checkpoint import CheckpointError, read_checkpoint, restore, save_checkpoint

log = logging.getLogger(__name__)
KEYS = ("epoch", "history", "rng")


def save_progress(path: str | os.PathLike, learner: Module, optimizer: Optimizer, epochs_done: int, history: dict,
                  settings: dict, scheduler=None) -> None:
    """A checkpoint that ``meta_learn(resume=path)`` continues from."""
    metadata = {"epoch": epochs_done, "history": history, "rng": nx.random.get_rng_state(), "settings": settings}
    if scheduler is not None:
        metadata["scheduler"] = {"type": type(scheduler).__name__, "state": _finite(scheduler.state_dict())}
    save_checkpoint(path, learner, optimizer, metadata=metadata)
    log.info("saved checkpoint %s after epoch %d", path, epochs_done)


def resume(path: str | os.PathLike, learner: Module, optimizer: Optimizer, epochs: int,
           settings: dict, scheduler=None) -> tuple[int, dict[str, list[float]]]:
    """Load a progress checkpoint into ``learner``, ``optimizer``, ``scheduler`` and neurenix's random state,
    once all of it is checked; return (epochs done, history so far). A file without progress (a plain
    checkpoint) starts at epoch 0 from its weights."""
    found: dict[str, Any] = {}
    # the schedule first: a scheduler also adds "initial_lr" to the optimizer's groups, which restore() compares
    metadata = read_checkpoint(path).metadata
    done = metadata.get("epoch") if type(metadata.get("epoch")) is int else 0
    schedule = _scheduler(path, metadata.get("scheduler"), scheduler, done)

    def check(metadata: dict) -> None:
        found.update(_check(path, metadata, epochs, settings))

    restore(path, learner, optimizer, check)
    if found["rng"] is not None:
        nx.random.set_rng_state(found["rng"])
    if schedule is not None:
        scheduler.load_state_dict(schedule)
    log.info("resumed from %s after epoch %d", path, found["epoch"])
    return found["epoch"], found["history"]


def _check(path, metadata: dict, epochs: int, settings: dict) -> dict[str, Any]:
    present = [k for k in KEYS if k in metadata]
    if not present:
        return {"epoch": 0, "history": None, "rng": None}
    if len(present) < len(KEYS):
        raise CheckpointError(f"{path}: the progress metadata has {present} but lacks "
                              f"{[k for k in KEYS if k not in metadata]}")
    done = metadata["epoch"]
    if type(done) is not int or done < 0:
        raise CheckpointError(f"{path}: the epoch {done!r} is not an int >= 0")
    if done > epochs:
        raise ValueError(f"meta_learn: {path} is at epoch {done}, past epochs={epochs}: pass epochs >= {done}")
    check_settings(path, metadata.get("settings"), settings)
    return {"epoch": done, "history": _history(path, metadata["history"], done), "rng": _rng(path, metadata["rng"])}


def _scheduler(path, saved: Any, scheduler, done: int) -> dict | None:
    """The saved scheduler state to load into ``scheduler``: a run that schedules its rate resumes only a run
    that scheduled it the same way (or had not started), and the other way round."""
    kind = None if scheduler is None else type(scheduler).__name__
    if saved is None:
        if kind is not None and done > 0:
            raise ValueError(f"meta_learn: {path} was saved by a run without a scheduler; resume it without one")
        return None
    if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict):
        raise CheckpointError(f"{path}: the scheduler metadata {saved!r:.200} is not {{'type': ..., 'state': {{...}}}}")
    if saved.get("type") != kind:
        raise ValueError(f"meta_learn: {path} was saved by a run with scheduler {saved.get('type')}, this run has "
                         f"{kind}; resume with the scheduler it was saved with")
    return _unfinite(saved["state"])


def _finite(value: Any) -> Any:
    """``value`` with its infinite and NaN floats (ReduceLROnPlateau's starting best) spelled
    ``{"float": "inf"}``: a checkpoint's JSON holds finite numbers only."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return [_finite(v) for v in value] if isinstance(value, (list, tuple)) else value


def _unfinite(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"float"} and value["float"] in ("inf", "-inf", "nan"):
            return float(value["float"])
        return {k: _unfinite(v) for k, v in value.items()}
    return [_unfinite(v) for v in value] if isinstance(value, list) else value


PER_EPOCH, PER_SCORE = {"loss", "accuracy"}, {"validation", "validation_epoch"}


def _history(path, history: Any, done: int) -> dict[str, list[float]]:
    """The saved history: a loss (and maybe an accuracy) per epoch done, and maybe validation scores with the
    epochs they were taken after (as many of each, at most one per epoch done); finite numbers."""
    if not isinstance(history, dict) or "loss" not in history or not set(history) <= PER_EPOCH | PER_SCORE or \
            (set(history) & PER_SCORE and not set(history) >= PER_SCORE):
        raise CheckpointError(f"{path}: the history must map 'loss' (and 'accuracy', 'validation' with "
                              f"'validation_epoch') to lists, got {history!r:.200}")
    for key, values in history.items():
        size = done if key in PER_EPOCH else len(history["validation_epoch"])
        if not isinstance(values, list) or len(values) != size or (key in PER_SCORE and size > done):
            got = f"{len(values)} entries" if isinstance(values, list) else repr(values)
            raise CheckpointError(f"{path}: the history's {key!r} must have one entry per "
                                  f"{'epoch done' if key in PER_EPOCH else 'validation score'} ({size}), got {got}")
        if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            raise CheckpointError(f"{path}: the history's {key!r} holds something other than finite numbers")
    return {k: [(int(v) if k == "validation_epoch" else float(v)) for v in vs] for k, vs in history.items()}


def _rng(path, state: Any) -> dict:
    """A random state neurenix's generator accepts: tried on a generator of the same kind first."""
    own = nx.random.generator().bit_generator
    try:
        type(own)().state = state
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        raise CheckpointError(f"{path}: the random state is not a {type(own).__name__} state ({e})") from None
    return state


def check_settings(path, saved: Any, settings: dict) -> None:
    """Refuse a checkpoint of a run with other settings, naming every difference, for the groups ("run",
    "meta_learn") that ``settings`` has (files without settings, from before they were saved, are not checked)."""
    if saved is None:
        return
    now = json.loads(json.dumps(settings))  # as it would be saved: tuples are lists
    if not isinstance(saved, dict) or not all(isinstance(saved.get(g, {}), dict) for g in now):
        raise CheckpointError(f"{path}: the settings {saved!r:.200} are not an object of objects")
    differ = [f"{key} {_show(saved_value)} (now {_show(value)})" for key, saved_value, value in _pairs(saved, now)
              if saved_value != value]
    if differ:
        raise ValueError(f"{path} was saved by a run with other settings: {', '.join(differ)}; resume with the "
                         "settings it was saved with, or start a new run")


def _pairs(saved: dict, now: dict):
    """(key, saved value, current value) over both runs' settings, the caller's first."""
    for group in ("run", "meta_learn"):
        if group not in now:
            continue
        a, b = saved.get(group) or {}, now.get(group) or {}
        for key in list(b) + [k for k in a if k not in b]:
            yield key, a.get(key, UNSET), b.get(key, UNSET)


UNSET = "(unset)"


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def settings(learner, tasks_per_batch: int, shuffle: bool, run: Mapping[str, Any] | None) -> dict:
    """What a resumed run must share with the one it resumes: the learner's hyper-parameters, the batching and
    shuffling of the loop, and the caller's ``settings``."""
    try:
        run = json.loads(json.dumps(dict(run or {}), allow_nan=False))
    except (TypeError, ValueError) as e:
        raise TypeError(f"settings must be a JSON-able mapping with finite numbers ({e})") from None
    return {"meta_learn": {**learner.hyperparameters(), "tasks_per_batch": tasks_per_batch, "shuffle": shuffle},
            "run": run}

