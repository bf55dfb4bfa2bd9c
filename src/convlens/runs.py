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

import datetime as _dt
import io
import json
import os
import sys
import tempfile
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
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
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
        """
        from ._runtime import versions

        run = cls(path)
        run.path.mkdir(parents=True, exist_ok=True)
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
    def open(cls, path: str | os.PathLike) -> "RunDir":
        run = cls(path)
        if not (run.path / cls.CONFIG).is_file():
            raise ConvlensError(f"{path}: not a convlens run folder (no {cls.CONFIG}); pass a folder made by a training verb, e.g. runs/<name>")
        return run

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
