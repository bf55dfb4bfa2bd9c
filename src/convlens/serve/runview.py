"""The Runs page's work: every run under the folder, its curves, predictions, live progress,
and starting a chapter recipe.

* Runs are folders with a ``config.json`` (:class:`convlens.runs.RunDir`), found up to three
  levels deep without following symbolic links.
* Per-image test predictions (confusion-matrix cells, the most confidently wrong images) come
  from :func:`convlens.explain.report.most_confidently_wrong`: the run's best checkpoint on its
  own test split, rebuilt exactly as it trained. When that is impossible (no checkpoint yet, the
  data set is not on this machine) the page says why.
* Live progress: ``<run>/events.jsonl`` (:mod:`convlens.events`) tailed with ``read_events``.
* Training: a fixed list of recipes (:data:`RECIPES`) run as ``python -m convlens ...
  --out RUNS_DIR``; the page never sends a command line, only a recipe's name.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import subprocess
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConvlensError
from ..runs import RunDir
from .files import safe_path

MAX_DEPTH = 3

#: recipe name -> (verb and its fixed arguments, description). The chapter's own recipes.
RECIPES: dict[str, tuple[list[str], str]] = {
    "fashion-dnn": (["train", "--model", "dnn", "--data", "fashion-mnist", "--epochs", "5"],
                    "5.2: the chapter's DNN on Fashion-MNIST (batch 100, Adam 1e-3, 5 epochs)"),
    "fashion-cnn": (["train", "--model", "cnn", "--data", "fashion-mnist", "--epochs", "5"],
                    "5.2: the chapter's CNN on Fashion-MNIST (batch 100, Adam 1e-3, 5 epochs)"),
    "fashion-cnn-quick": (["train", "--model", "cnn", "--data", "fashion-mnist", "--epochs", "2",
                           "--limit-train", "5000", "--val-size", "1000", "--limit-test", "2000"],
                          "the same CNN on 5,000 images, 2 epochs (about a minute)"),
    "fashion-cnn-smoke": (["train", "--model", "cnn", "--data", "fashion-mnist", "--epochs", "1",
                           "--limit-train", "600", "--val-size", "100", "--limit-test", "300"],
                          "the same CNN on 500 images, 1 epoch (seconds: to try the page)"),
    "catdog-transfer": (["transfer", "--data", "{shared}/catanddog", "--strategy", "feature-extract"],
                        "5.3.1: transfer learning on the chapter's cat/dog photos (EfficientNet-Lite0 features + linear head)"),
}


def find_runs(root: Path) -> list[Path]:
    """Run folders under ``root`` (depth <= :data:`MAX_DEPTH`, no symlinks, no hidden folders)."""
    out = []
    root_depth = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        d = Path(dirpath)
        dirnames[:] = sorted(n for n in dirnames if not n.startswith(".") and n not in ("checkpoints", "plots")
                             and not (d / n).is_symlink())
        if len(d.parts) - root_depth >= MAX_DEPTH:
            dirnames[:] = []
        if d != root and RunDir.CONFIG in filenames:
            out.append(d)
            dirnames[:] = [n for n in dirnames if n not in ("explain", "lightning_logs")]
    return out


def rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def open_run(root: Path, name: str) -> RunDir:
    p = safe_path(root, name)
    if p is None or not RunDir.is_run(p):
        raise ConvlensError(f"run {name!r}: no run folder of that name under {root}")
    return RunDir(p)


def status(run: RunDir) -> str:
    """``finished`` (a summary), ``running`` (events but no ``run_end`` yet) or ``incomplete``."""
    from ..events import read_events

    if (run.path / RunDir.SUMMARY).is_file():
        return "finished"
    events, _ = read_events(run.path)
    if events and events[-1].kind != "run_end":
        return "running"
    return "stopped" if events else "incomplete"


def run_row(root: Path, path: Path) -> dict[str, Any]:
    run = RunDir(path)
    try:
        rec = run.record
    except ConvlensError as exc:
        return {"name": rel(root, path), "error": str(exc)}
    cfg = rec.get("config", {})
    metrics = run.metrics()
    last = metrics[-1] if metrics else {}
    return {"name": rel(root, path), "kind": rec.get("kind", "train"),
            "model": cfg.get("model") or cfg.get("backbone") or "?", "data": str(cfg.get("data", "?")),
            "epochs_done": len(metrics), "epochs": cfg.get("epochs"), "started": rec.get("started"),
            "status": status(run), "has_checkpoint": (run.checkpoints_dir / "best.ckpt").is_file()
            or (run.checkpoints_dir / "last.ckpt").is_file(),
            "last": {k: v for k, v in last.items() if isinstance(v, (int, float))}}


def list_runs(root: Path) -> list[dict[str, Any]]:
    rows = [run_row(root, p) for p in find_runs(root)]
    return sorted(rows, key=lambda r: r.get("started") or "", reverse=True)


def run_detail(root: Path, name: str) -> dict[str, Any]:
    run = open_run(root, name)
    plots = sorted(p.name for p in (run.path / "plots").glob("*.png")) if (run.path / "plots").is_dir() else []
    return {**run_row(root, run.path), "record": run.record, "metrics": run.metrics(), "summary": run.summary(),
            "plots": [f"{name}/plots/{p}" for p in plots],
            "report": f"{name}/{RunDir.REPORT}" if (run.path / RunDir.REPORT).is_file() else None}


def curves_png(root: Path, name: str) -> bytes | None:
    from ..reports.plots import plot_curves
    from .image import PLOT_LOCK
    from ..runs import figure_png

    run = open_run(root, name)
    rows = run.metrics()
    if not rows:
        return None
    with PLOT_LOCK:
        return figure_png(plot_curves(rows, title=run.name), dpi=80)


# ---- per-image predictions -------------------------------------------------------------------
@dataclass
class Predictions:
    classes: list[str]
    preds: Any      # (N,) int64
    targets: Any    # (N,) int64
    probs: Any      # (N, K) float32
    images: Any     # (N, C, H, W) uint8
    wrong: list[int]
    acc: float
    checkpoint: str = ""


class PredictionCache:
    """The evaluation of the last few runs opened (each holds its test images: a few MB)."""

    def __init__(self, size: int = 3):
        self.size = size
        self._items: OrderedDict[tuple[str, float], Predictions] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, root: Path, name: str) -> Predictions:
        from ..engine.checkpoint import resolve_checkpoint

        run = open_run(root, name)
        try:
            ckpt = resolve_checkpoint(run.path, "best")
        except ConvlensError as exc:
            raise ConvlensError(f"no checkpoint to evaluate yet ({exc})") from None
        key = (str(run.path), ckpt.stat().st_mtime)
        with self._lock:  # one evaluation at a time (it uses every core)
            if key not in self._items:
                from ..explain.report import most_confidently_wrong

                ex, test, wrong, ev = most_confidently_wrong(run.path, n=16)
                self._items[key] = Predictions(list(ex.classes), ev.preds, ev.targets, ev.probs, test.images, wrong,
                                               float(ev.acc), ckpt.name)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
            return self._items[key]


def predictions_summary(p: Predictions) -> dict[str, Any]:
    from ..engine.evaluate import confusion_matrix
    from .pictures import data_uri, thumbnail_png

    cm = confusion_matrix(p.targets, p.preds, len(p.classes)).tolist()
    wrong = [{"index": i, "true": p.classes[int(p.targets[i])], "pred": p.classes[int(p.preds[i])],
              "prob": float(p.probs[i, p.preds[i]]), "png": data_uri(thumbnail_png(p.images[i]))} for i in p.wrong]
    return {"classes": p.classes, "confusion": cm, "accuracy": p.acc, "n": len(p.targets), "wrong": wrong,
            "checkpoint": p.checkpoint}


def cell_images(p: Predictions, true: int, pred: int, limit: int = 48) -> dict[str, Any]:
    from .pictures import data_uri, thumbnail_png

    k = len(p.classes)
    if not (0 <= true < k and 0 <= pred < k):
        raise ConvlensError(f"cell ({true}, {pred}): classes are 0-{k - 1}")
    idx = ((p.targets == true) & (p.preds == pred)).nonzero().flatten()
    count = len(idx)
    idx = idx[p.probs[idx, pred].argsort(descending=True)][:limit]
    return {"true": p.classes[true], "pred": p.classes[pred], "count": count,
            "images": [{"index": int(i), "prob": float(p.probs[i, pred]), "png": data_uri(thumbnail_png(p.images[i]))}
                       for i in idx.tolist()]}


# ---- training from the page ------------------------------------------------------------------
class TrainLauncher:
    """At most one training subprocess at a time (the chapter's recipes use every core)."""

    def __init__(self, root: Path):
        self.root = root
        self.proc: subprocess.Popen | None = None
        self.name: str | None = None
        self.log: Path | None = None
        self._lock = threading.Lock()

    def argv(self, recipe: str, name: str) -> list[str]:
        if recipe not in RECIPES:
            raise ConvlensError(f"recipe {recipe!r}: choose one of {', '.join(RECIPES)}")
        args, _ = RECIPES[recipe]
        if any("{shared}" in a for a in args):
            from .._runtime import shared_data_dir

            shared = shared_data_dir()
            if shared is None:
                raise ConvlensError(f"recipe {recipe!r} needs the chapter's photos: set CONVLENS_SHARED_DATA to the shared data folder")
            args = [a.replace("{shared}", str(shared)) for a in args]
        return [sys.executable, "-m", "convlens", *args, "--out", str(self.root), "--name", name]

    def start(self, recipe: str) -> dict[str, Any]:
        with self._lock:
            if self.proc is not None and self.proc.poll() is None:
                raise ConvlensError(f"run {self.name} is still training; wait for it to finish")
            name = f"{recipe}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
            argv = self.argv(recipe, name)
            logs = self.root / ".convlens-serve"
            logs.mkdir(parents=True, exist_ok=True)
            self.log = logs / f"{name}.log"
            with self.log.open("wb") as log:  # the child keeps its own descriptor
                self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             cwd=str(self.root), start_new_session=True)
            self.name = name
            return self.state()

    def state(self) -> dict[str, Any]:
        if self.proc is None:
            return {"running": False, "name": None}
        rc = self.proc.poll()
        tail = ""
        if self.log is not None and self.log.is_file():
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-8:])
        return {"running": rc is None, "returncode": rc, "name": self.name, "log_tail": tail}

    def stop(self) -> None:
        """Terminate the child this server started (on shutdown)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def recipes() -> list[dict[str, str]]:
    return [{"name": k, "description": d} for k, (_, d) in RECIPES.items()]


def finite(o: Any) -> Any:
    """NaN/inf (a loss that diverged, an epoch without validation) -> None: JSON has no NaN,
    and the browser's JSON.parse rejects Python's ``NaN``."""
    import math

    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [finite(v) for v in o]
    return o


def event_json(e: Any) -> str:
    from dataclasses import asdict

    return json.dumps(finite(json.loads(json.dumps(asdict(e), default=float))), allow_nan=False)
