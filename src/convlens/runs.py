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
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and exc.filename is None:  # a full disk fails in write(): name the file
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` that never leaves a truncated file behind."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_copy_file(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy ``src`` to ``dst`` through a temporary file beside ``dst`` + ``os.replace``, with the
    permissions every other run file gets (``0666 & ~umask``; a bare ``mkstemp`` copy is 0600)."""
    dst = Path(dst)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, dst)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and exc.filename is None:
            raise OSError(exc.errno, exc.strerror, str(dst)) from exc
        raise
    return dst


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
    if not parent.is_dir():
        raise ConvlensError(f"--out {parent}: is a file, not a folder; give a folder")
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
    for f in folder.rglob("*"):
        if f.is_file() and f.name not in _NOTHING_OF_VALUE and not f.name.endswith(".tmp"):
            return False
    return True


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


def default_run_name(prefix: str) -> str:
    return f"{prefix}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


class RunDir:
    """A run folder. Create one with :meth:`create`, reopen one with :meth:`open`."""

    CONFIG = "config.json"
    METRICS = "metrics.jsonl"
    SUMMARY = "summary.json"
    REPORT = "report.html"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    # ---- creation / opening -------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike, config: dict[str, Any], kind: str) -> "RunDir":
        """Make the folder and record ``config`` with versions, command line and time.

        ``kind`` names the verb that made the run (``train``, ``transfer``, ``graph``...), so
        that later verbs (``evaluate``, ``predict``, ``explain``, ``shapes``) know how to
        rebuild its model.

        The folder is made exclusively (one atomic ``mkdir``): when ``path`` exists already --
        another run started in the same second with the same ``--out`` -- the run goes to
        ``path-2``, ``path-3``... so no two runs ever share a folder. A folder this process made
        and left holding nothing but its record (the run failed before its first epoch) is
        removed at exit.
        """
        from ._runtime import versions

        run = cls(_make_exclusive(Path(path)))
        _CREATED.append(run.path)
        record = {
            "kind": kind,
            "config": config,
            "versions": versions(),
            "argv": sys.argv,
            "started": _dt.datetime.now().isoformat(timespec="seconds"),
        }
        atomic_write_json(run.path / cls.CONFIG, record)
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

    def remove_stale_temporaries(self, older_than: float) -> list[Path]:
        """Delete ``.*.tmp`` files (left by a crash in :func:`atomic_write_bytes`) last modified
        before ``older_than`` (a ``time.time()`` value); return what was removed."""
        removed = []
        for tmp in self.path.rglob(".*.tmp"):
            try:
                if tmp.is_file() and tmp.stat().st_mtime < older_than:
                    tmp.unlink()
                    removed.append(tmp)
            except FileNotFoundError:  # another process renamed or removed it meanwhile
                continue
        return removed

    @staticmethod
    def is_run(path: str | os.PathLike) -> bool:
        return (Path(path) / RunDir.CONFIG).is_file()

    # ---- records ----------------------------------------------------------------------------
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

    @property
    def plots_dir(self) -> Path:
        d = self.path / "plots"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def file(self, name: str) -> Path:
        return self.path / name

    # ---- per-epoch metrics ------------------------------------------------------------------
    def append_metrics(self, row: dict[str, Any]) -> None:
        """Append one epoch's metrics; rewritten whole, so a crash never leaves half a line."""
        rows = self.metrics()
        rows.append(row)
        self.write_metrics(rows)

    def write_metrics(self, rows: Iterable[dict[str, Any]]) -> None:
        text = "".join(json.dumps(r, default=_json_default) + "\n" for r in rows)
        atomic_write_text(self.path / self.METRICS, text)

    def metrics(self) -> list[dict[str, Any]]:
        p = self.path / self.METRICS
        if not p.is_file():
            return []
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]

    def truncate_metrics(self, last_epoch: int) -> None:
        """Drop rows after ``last_epoch`` (0-based), used when a run resumes."""
        self.write_metrics([r for r in self.metrics() if r.get("epoch", -1) <= last_epoch])

    # ---- summary ----------------------------------------------------------------------------
    def write_summary(self, summary: dict[str, Any]) -> Path:
        return atomic_write_json(self.path / self.SUMMARY, summary)

    def summary(self) -> dict[str, Any]:
        p = self.path / self.SUMMARY
        return json.loads(p.read_text()) if p.is_file() else {}

    def save_figure(self, fig: Any, name: str, dpi: int = 110) -> Path:
        """Save a matplotlib figure as ``plots/<name>.png`` (atomically) and close it."""
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        plt.close(fig)
        return atomic_write_bytes(self.plots_dir / f"{name}.png", buf.getvalue())

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"
