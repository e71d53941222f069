"""``--log FILE``: a training run's metrics, one row per meta-iteration, written as they come (JSON lines or CSV);
and TensorBoard event files beside them when the ``tensorboard`` package is installed."""

from __future__ import annotations

import csv
import json
import math
import pathlib
import time

from .common import ArgumentError

#: the columns, in order: validation is empty (CSV) or absent (JSON) where the iteration was not validated
COLUMNS = ("iteration", "loss", "accuracy", "validation", "seconds")
FORMATS = (".jsonl", ".csv")


def check_log(path: str) -> None:
    """A --log path names its format by its suffix."""
    if pathlib.Path(path).suffix.lower() not in FORMATS:
        raise ArgumentError("--log", f"{path}: the file's suffix says its format, {' or '.join(FORMATS)}")


class MetricsLog:
    """A ``meta_learn`` callback writing each iteration's row to ``path`` (appending when ``resume``: the rows of
    the run it resumes stay). TensorBoard events go to ``<path without suffix>.tensorboard/`` when the
    ``tensorboard`` package can be imported (``tensorboard --logdir`` that folder)."""

    def __init__(self, path: str, resume: bool = False):
        check_log(path)
        self.path, self.csv = pathlib.Path(path), pathlib.Path(path).suffix.lower() == ".csv"
        fresh = not resume or not self.path.exists() or self.path.stat().st_size == 0
        self.file = open(self.path, "w" if fresh else "a", newline="")  # noqa: SIM115 - closed by close()
        self.writer = csv.writer(self.file) if self.csv else None
        if self.csv and fresh:
            self.writer.writerow(COLUMNS)
        self.start = time.perf_counter()
        self.events = _tensorboard(self.path.with_suffix(".tensorboard"))

    def __call__(self, done: int, history: dict) -> None:
        row = {"iteration": done, "loss": history["loss"][-1],
               "accuracy": history["accuracy"][-1] if history.get("accuracy") else None,
               "validation": history["validation"][-1] if history.get("validation_epoch", [None])[-1] == done
               else None, "seconds": round(time.perf_counter() - self.start, 3)}
        if self.csv:
            self.writer.writerow(["" if row[k] is None else row[k] for k in COLUMNS])
        else:
            self.file.write(json.dumps({k: v for k, v in row.items() if v is not None and not (
                isinstance(v, float) and not math.isfinite(v))}) + "\n")
        self.file.flush()
        if self.events is not None:
            self.events(done, {k: row[k] for k in ("loss", "accuracy", "validation") if row[k] is not None})

    def close(self) -> None:
        self.file.close()


def _tensorboard(folder: pathlib.Path):
    """A function writing scalars as TensorBoard events into ``folder``, or None without ``tensorboard``."""
    try:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError:
        return None
    writer = EventFileWriter(str(folder))

    def write(step: int, scalars: dict) -> None:
        values = [Summary.Value(tag=tag, simple_value=float(v)) for tag, v in scalars.items()]
        writer.add_event(Event(wall_time=time.time(), step=step, summary=Summary(value=values)))
        writer.flush()

    return write
