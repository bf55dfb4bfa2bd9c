"""Progress events: how a run tells the world what it is doing.

Every verb that trains emits the same small set of events through one callback protocol, so
that front ends subscribe instead of each reading the loop's internals: the terminal's tqdm bar
and a notebook's display are listeners; the browser explorer tails ``events.jsonl``.

An event is a :class:`RunEvent`; a listener is any ``Callable[[RunEvent], None]``. :func:`emit`
fans each event out; a listener that raises is warned about, so a broken front end never stops a run.
"""
from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Literal

EventKind = Literal["run_start", "epoch_start", "epoch_end", "step", "message", "run_end"]

#: File in a run folder holding one JSON event per line (steps thinned, see :class:`EventLog`).
EVENTS_FILE = "events.jsonl"


@dataclass
class RunEvent:
    """One thing a run did. ``kind``: one of :data:`EventKind`. ``run``: the run folder's name.
    ``epoch`` (0-based) and ``step`` (optimizer steps within the epoch) with ``total`` (steps per
    epoch, or epochs for ``run_start``) where they apply. ``metrics``: numbers such as ``loss``,
    ``val_acc``. ``message``: free text (``run_end``: ``"ok"`` or ``"failed: <why>"``)."""

    kind: EventKind
    run: str = ""
    epoch: int | None = None
    step: int | None = None
    total: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    message: str = ""
    time: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=float)


Listener = Callable[[RunEvent], None]


def emit(listeners: Iterable[Listener], event: RunEvent) -> None:
    """Send ``event`` to every listener; one that raises is warned about, never fatal."""
    for listener in list(listeners):
        try:
            listener(event)
        except Exception as exc:  # noqa: BLE001 - a front end must not stop training
            warnings.warn(f"progress listener {listener!r} failed: {exc}", RuntimeWarning, stacklevel=2)


class EventLog:
    """Listener appending events to ``<run>/events.jsonl`` for front ends in other processes. Step
    events are thinned to at most one per ``min_step_interval`` seconds (the browser needs a live
    bar, not every step); every other event is written and flushed at once."""

    def __init__(self, run_dir: str | os.PathLike, min_step_interval: float = 0.5):
        self.path = Path(run_dir) / EVENTS_FILE
        self.min_step_interval = min_step_interval
        self._last_step = 0.0

    def __call__(self, event: RunEvent) -> None:
        if event.kind == "step":
            if event.time - self._last_step < self.min_step_interval:
                return
            self._last_step = event.time
        with self.path.open("a", encoding="utf-8") as f:
            f.write(event.to_json() + "\n")
            f.flush()


def read_events(run_dir: str | os.PathLike, offset: int = 0) -> tuple[list[RunEvent], int]:
    """Events written to ``run_dir`` after byte ``offset``, and the new offset (for tailing)."""
    path = Path(run_dir) / EVENTS_FILE
    if not path.is_file():
        return [], offset
    with path.open("rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1  # a line still being written waits for the next call
    events = [RunEvent(**json.loads(line)) for line in data[:end].decode("utf-8").splitlines() if line.strip()]
    return events, offset + end


def collect(into: list[RunEvent]) -> Listener:
    """A listener that appends every event to ``into`` (tests, notebooks)."""
    return into.append
