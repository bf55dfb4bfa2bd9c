"""Run folders: everything a run produced, in one place a user can open or resume from.

Layout (every verb that trains writes the same one)::

    runs/<name>/
        config.json        what was asked (args, seed), versions, command line, start time
        metrics.jsonl      one JSON object per epoch
        checkpoints/       epoch=NNN.ckpt per epoch, last.ckpt, best.ckpt
        plots/             PNG figures
        report.html        self-contained report (images inlined)
        summary.json       final numbers

All writes go through :func:`atomic_write_bytes`: a crash or Ctrl-C leaves either the old file
or the new one, never half of one.
"""
from __future__ import annotations

import atexit
import datetime as _dt
import errno
import io
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .errors import ConvlensError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder + ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; reports are for everyone to read
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:  # a full disk fails in write(): name the file
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def figure_png(fig: Any, dpi: int = 110, tight: bool = True, close: bool = True) -> bytes:
    """A matplotlib figure as PNG bytes (closed afterwards unless ``close=False``)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, **({"bbox_inches": "tight"} if tight else {}))
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return buf.getvalue()


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 110, tight: bool = True) -> Path:
    """The one figure saver: ``fig`` as a PNG at ``path``, written atomically, then closed."""
    return atomic_write_bytes(path, figure_png(fig, dpi, tight))


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, (set, tuple)):
        return list(o)
    return repr(o)


#: when this process started (close enough: convlens.runs is imported before any run is written)
PROCESS_START = time.time()
#: a temporary file untouched this long is a crash's remains, not a write in progress
STALE_TMP_SECONDS = 600
#: run folders this process created, checked at exit by :func:`discard_empty_runs`
_CREATED: list[Path] = []
#: what a run folder may hold and still be "empty": its record, Lightning's log stub, event log, temporaries
_NOTHING_OF_VALUE = ("config.json", "events.jsonl", "hparams.yaml")


def _make_exclusive(path: Path) -> Path:
    """``mkdir`` ``path`` (or ``path-2``, ``path-3``... when taken) atomically; return the one made.
    An ``--out`` that is a file or cannot be written is the user's mistake: one line."""
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise ConvlensError(f"--out {parent}: a file is in the way ({exc.filename}); give a folder") from exc
    except NotADirectoryError as exc:
        raise ConvlensError(f"--out {parent}: part of the path is a file, not a folder; give a folder") from exc
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise ConvlensError(f"--out {parent}: cannot create it ({exc.strerror}); choose a folder you may write to") from exc
        raise
    for n in range(1, 10_000):
        candidate = path if n == 1 else path.with_name(f"{path.name}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise ConvlensError(f"--out {parent}: not writable ({exc.strerror}); choose a folder you may write to") from exc
            raise
    raise ConvlensError(f"{path}: 9,999 run folders of this name exist; choose another --name")


def _holds_nothing_of_value(folder: Path) -> bool:
    return not any(f.is_file() and f.name not in _NOTHING_OF_VALUE and not f.name.endswith(".tmp") for f in folder.rglob("*"))


def discard_empty_runs() -> list[Path]:
    """Remove run folders this process created that hold only their record (the run failed
    before saving an epoch, a checkpoint or a summary); return them. Runs at exit."""
    gone = []
    for path in _CREATED:
        if path.is_dir() and _holds_nothing_of_value(path):
            shutil.rmtree(path, ignore_errors=True)
            gone.append(path)
    _CREATED.clear()
    return gone


atexit.register(discard_empty_runs)


def default_run_name(prefix: str, data: str | None = None) -> str:
    """``<prefix>-<time>``, or ``<prefix>-<data>-<time>``: a data folder by its own name."""
    if data is not None:
        prefix = f"{prefix}-{Path(data).name if Path(data).is_dir() else data}".replace("/", "_")
    return f"{prefix}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


class RunDir:
    """A run folder. Create one with :meth:`create`, reopen one with :meth:`open`."""

    CONFIG = "config.json"
    METRICS = "metrics.jsonl"
    SUMMARY = "summary.json"
    REPORT = "report.html"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @classmethod
    def create(cls, path: str | os.PathLike, config: dict[str, Any], kind: str) -> "RunDir":
        """Make the folder and record ``config`` with versions, command line and time. ``kind``
        names the verb that made the run (``train``, ``transfer``, ``graph``...), so that later verbs
        (``evaluate``, ``predict``, ``explain``, ``shapes``) know how to rebuild its model.

        The folder is made exclusively (one atomic ``mkdir``): when ``path`` exists already (another
        run started in the same second with the same ``--out``) the run goes to ``path-2``,
        ``path-3``..., so no two runs ever share a folder; :func:`discard_empty_runs` removes it at
        exit if the run failed before saving anything."""
        from ._runtime import versions

        run = cls(_make_exclusive(Path(path)))
        _CREATED.append(run.path)
        atomic_write_json(run.path / cls.CONFIG, {"kind": kind, "config": config, "versions": versions(), "argv": sys.argv,
                                                  "started": _dt.datetime.now().isoformat(timespec="seconds")})
        return run

    @classmethod
    def open(cls, path: str | os.PathLike, resume: bool = False) -> "RunDir":
        """An existing run folder. ``resume=True`` (this process will write into it) removes
        every temporary ``.*.tmp`` older than this process: the remains of a crash during a
        write. Plain opening removes only those untouched for :data:`STALE_TMP_SECONDS`, so a
        reader never deletes a file another process is about to rename into place."""
        run = cls(path)
        if not (run.path / cls.CONFIG).is_file():
            raise ConvlensError(f"{path}: not a convlens run folder (no {cls.CONFIG}); pass a folder made by a training verb, e.g. runs/<name>")
        run.remove_stale_temporaries(PROCESS_START if resume else time.time() - STALE_TMP_SECONDS)
        return run

    def remove_stale_temporaries(self, older_than: float) -> None:
        """Delete ``.*.tmp`` files (left by a crash in :func:`atomic_write_bytes`) last modified
        before ``older_than`` (a ``time.time()`` value)."""
        for tmp in self.path.rglob(".*.tmp"):
            try:
                if tmp.is_file() and tmp.stat().st_mtime < older_than:
                    tmp.unlink()
            except FileNotFoundError:  # another process renamed or removed it meanwhile
                continue

    @staticmethod
    def is_run(path: str | os.PathLike) -> bool:
        return (Path(path) / RunDir.CONFIG).is_file()

    @property
    def record(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / self.CONFIG).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConvlensError(f"{self.path / self.CONFIG}: unreadable run record ({exc}); the run folder is damaged") from exc

    @property
    def config(self) -> dict[str, Any]:
        return self.record["config"]

    @property
    def kind(self) -> str:
        return self.record.get("kind", "train")

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    def file(self, name: str) -> Path:
        return self.path / name

    def append_metrics(self, row: dict[str, Any]) -> None:
        """Append one epoch's metrics; rewritten whole, so a crash never leaves half a line."""
        self.write_metrics([*self.metrics(), row])

    def write_metrics(self, rows: Iterable[dict[str, Any]]) -> None:
        atomic_write_text(self.path / self.METRICS, "".join(json.dumps(r, default=_json_default) + "\n" for r in rows))

    def metrics(self) -> list[dict[str, Any]]:
        p = self.path / self.METRICS
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.is_file() else []

    def truncate_metrics(self, last_epoch: int) -> None:
        """Drop rows after ``last_epoch`` (0-based), used when a run resumes."""
        self.write_metrics([r for r in self.metrics() if r.get("epoch", -1) <= last_epoch])

    def write_summary(self, summary: dict[str, Any]) -> Path:
        return atomic_write_json(self.path / self.SUMMARY, summary)

    def summary(self) -> dict[str, Any]:
        p = self.path / self.SUMMARY
        return json.loads(p.read_text()) if p.is_file() else {}

    def save_figure(self, fig: Any, name: str, dpi: int = 110) -> Path:
        """Save a matplotlib figure as ``plots/<name>.png`` (atomically) and close it."""
        return save_figure(fig, self.path / "plots" / f"{name}.png", dpi)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"


# ---- the run recorder: one epoch row, one checkpoint writer, one rule for "best" ------------
def write_checkpoint(ckpt: dict[str, Any], *paths: str | os.PathLike) -> list[Path]:
    """The one checkpoint writer: serialise ``ckpt`` once, then write it to each path beside its
    target and rename (never through ``$TMPDIR``: a rename across file systems is a copy, and a
    crash mid-copy leaves a file that looks valid). Every file gets the same mode (umask)."""
    import torch

    buf = io.BytesIO()
    torch.save(ckpt, buf)
    data = buf.getvalue()
    return [atomic_write_bytes(p, data) for p in paths]


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and x == x and abs(x) != float("inf")


@dataclass
class BestBy:
    """The one declared rule for a run's best epoch: ``metric`` (``val_acc`` higher is better,
    ``*_loss`` lower) or ``"last"`` (no validation split). Ties keep the earlier epoch; a row
    whose score or training loss is not finite is never best. ``convlens evaluate`` reads the
    rule from ``summary.json`` and applies the same :meth:`pick`."""

    metric: str = "val_acc"

    def score(self, row: dict[str, Any]) -> tuple[float, float] | None:
        """Comparable score of ``row`` (higher is better), ``None`` when it may not be best.
        Accuracy ties are broken by the lower loss of the same split."""
        if self.metric == "last":
            return (float(row["epoch"]), 0.0)
        v = row.get(self.metric)
        if not _finite(v) or not _finite(row.get("train_loss", 0.0)):
            return None
        if self.metric.endswith("loss"):  # lower is better
            return (-float(v), 0.0)
        loss = row.get(self.metric.rsplit("_", 1)[0] + "_loss")
        return (float(v), -float(loss) if _finite(loss) else 0.0)

    def pick(self, rows: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
        return max((r for r in rows if self.score(r) is not None), key=self.score, default=None)  # max keeps the first of ties


@dataclass
class RunResult:
    """What every verb's Python function returns: the run folder, its epoch rows, its final
    ``summary.json`` and the figures of its report. ``model`` (best checkpoint, eval mode) is
    read from the folder on first use."""

    run: RunDir
    history: list[dict[str, Any]]
    summary: dict[str, Any]
    figures: dict[str, Path] = field(default_factory=dict)
    model_: Any = field(default=None, repr=False)
    meta: dict[str, Any] = field(default_factory=dict, repr=False)
    members: dict[str, "RunResult"] = field(default_factory=dict, repr=False)  # compare: one result per model
    report_: Any = field(default=None, repr=False)  # summary -> figures: the run's report writer

    def amend(self, **entries: Any) -> None:
        """Add ``entries`` to the summary after the run (``auto``'s verdict over two runs), then
        write ``summary.json`` and the report again, so the page shows what the summary says."""
        self.summary.update(entries)
        self.run.write_summary(self.summary)
        if self.report_ is not None:
            self.figures = self.report_(self.summary) or self.figures

    @property
    def test_acc(self) -> float:
        return float(self.summary.get("test_acc", float("nan")))

    @property
    def best_epoch(self) -> int:
        return int(self.summary.get("best_epoch", 0))

    @property
    def seconds(self) -> float:
        return float(self.summary.get("total_seconds", 0.0))

    @property
    def decision(self) -> dict[str, Any] | None:
        return self.summary.get("auto")

    @property
    def model(self) -> Any:
        if self.model_ is None:
            from .engine.checkpoint import load_run_model

            self.model_, self.meta = load_run_model(self.run.path, "best")
        return self.model_

    def __getitem__(self, key: str) -> Any:
        """``result["test_acc"]``: the summary's numbers; compare's ``folder`` and ``results``: the folder, :attr:`members`."""
        return {**self.summary, "run": str(self.run.path), "folder": self.run.path, "results": self.members}[key]

    def __contains__(self, key: str) -> bool:
        return key in self.summary or key in ("run", "folder", "results")

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def __repr__(self) -> str:
        return f"RunResult(run={str(self.run.path)!r}, test_acc={self.test_acc:.4f}, best_epoch={self.best_epoch})"


class RunRecorder:
    """Writes what every verb's run records, in one order, and tells the ``listeners`` and always
    :class:`~convlens.events.EventLog` (``events.jsonl``, tailed by the explorer)."""

    def __init__(self, run: RunDir, best_by: str = "val_acc", listeners: Iterable[Any] = ()):
        from .events import EventLog

        self.run = run
        self.best_by = BestBy(best_by)
        self.listeners = [EventLog(run.path), *listeners]
        best = self.best_by.pick(run.metrics())  # a resumed run: the rule is replayed over the epochs already done
        self.best_epoch = int(best["epoch"]) if best else 0
        self._best_score = self.best_by.score(best) if best else None

    def emit(self, kind: str, **kw: Any) -> None:
        from .events import RunEvent, emit

        emit(self.listeners, RunEvent(kind, run=self.run.name, **kw))  # type: ignore[arg-type]

    def start(self, epochs: int, message: str = "") -> None:
        self.emit("run_start", total=epochs, message=message)

    def epoch_start(self, epoch: int, steps: int | None = None) -> None:
        """``epoch`` counted from 1 as in the run folder (events count from 0)."""
        self.emit("epoch_start", epoch=epoch - 1, total=steps)

    def step(self, epoch: int, step: int, steps: int | None, metrics: dict[str, float]) -> None:
        self.emit("step", epoch=epoch - 1, step=step, total=steps, metrics=metrics)

    def end_epoch(self, row: dict[str, Any], checkpoint: dict[str, Any] | None = None) -> bool:
        """Record one finished epoch (``row["epoch"]`` from 1): its metrics row (replacing an earlier
        row of that epoch, so a resumed run never counts it twice), then ``epoch=NNN.ckpt``,
        ``last.ckpt`` and, when :class:`BestBy` says so, ``best.ckpt``; returns whether it is the new best."""
        epoch = int(row["epoch"])
        rows = [r for r in self.run.metrics() if r.get("epoch") != epoch] + [row]
        self.run.write_metrics(sorted(rows, key=lambda r: r.get("epoch", 0)))
        score = self.best_by.score(row)
        improved = score is not None and (self._best_score is None or score > self._best_score)
        if improved:
            self.best_epoch, self._best_score = epoch, score
        if checkpoint is not None:
            ck = self.run.checkpoints_dir
            write_checkpoint(checkpoint, ck / f"epoch={epoch:03d}.ckpt", ck / "last.ckpt", *([ck / "best.ckpt"] if improved else []))
        metrics = {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and k != "epoch"}
        self.emit("epoch_end", epoch=epoch - 1, metrics=metrics)
        return improved

    def finish(self, summary: dict[str, Any], report: Any = None, model: Any = None) -> RunResult:
        """Write ``summary.json`` (with ``best_epoch``/``best_by``), then ``report(summary)`` -> figures
        (drawn from that summary, so the report shows everything), then ``run_end``."""
        summary = {**summary, "best_epoch": self.best_epoch, "best_by": self.best_by.metric}
        self.run.write_summary(summary)
        figures = report(summary) if report is not None else {}
        self.emit("run_end", message="ok", metrics={k: float(v) for k, v in summary.items() if _finite(v)})
        return RunResult(self.run, self.run.metrics(), summary, figures or {}, model_=model, report_=report)

    def fail(self, exc: BaseException) -> None:
        self.emit("run_end", message=f"failed: {exc}")
