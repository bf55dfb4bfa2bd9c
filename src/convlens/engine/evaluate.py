"""Evaluation done right: ``model.eval()``, ``torch.no_grad()``, nothing kept that is not used;
:func:`evaluate_run` picks the best epoch on the *validation* split, test accuracy is only reported
(what the chapter's loop did instead: docs/first-cnn.md, items 1 and 7).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.base import ImageTensors
from ..data.prepare import prepare_data  # noqa: F401 - convlens.engine.prepare_data, without Lightning
from ..errors import ConvlensError
from ..runs import BestBy, RunDir, RunResult, atomic_write_json
from .preprocess import BatchPreprocessor, wants_channels_last


@dataclass
class Evaluation:
    """Loss/accuracy of a model on a split, with every prediction (N small enough to keep)."""

    loss: float
    acc: float
    preds: torch.Tensor    # (N,) int64
    targets: torch.Tensor  # (N,) int64
    probs: torch.Tensor    # (N, K) float32 softmax

    def confusion(self, num_classes: int) -> np.ndarray:
        """(K, K) counts, rows = true class, columns = predicted."""
        return confusion_matrix(self.targets, self.preds, num_classes)

    def most_confidently_wrong(self, k: int = 10) -> torch.Tensor:
        wrong = (self.preds != self.targets).nonzero().flatten()
        return wrong[self.probs[wrong, self.preds[wrong]].argsort(descending=True)[:k]]  # by the wrong class's probability


def confusion_matrix(targets: Any, preds: Any, num_classes: int) -> np.ndarray:
    """The one confusion matrix: ``cm[t, p]`` = how many of class ``t`` were predicted ``p``."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(targets, dtype=np.int64), np.asarray(preds, dtype=np.int64)), 1)
    return cm


@torch.no_grad()
def evaluate_model(model: nn.Module, data: ImageTensors, batch_size: int = 1000, device: str | torch.device = "cpu",
                   pretrained_cfg: dict[str, Any] | None = None, precision: str = "32-true") -> Evaluation:
    """Evaluate ``model`` on uint8 images, normalised with its ``pretrained_cfg``. ``precision``: the
    run's (``32-true``, ``bf16-mixed``, ``16-mixed``), so a run's numbers are reproduced exactly;
    bf16 evaluation was 2x faster than float32 on the project's CPU."""
    device = torch.device(device)
    pcfg = pretrained_cfg or getattr(model, "pretrained_cfg", {}) or {}
    prep = BatchPreprocessor(pcfg.get("mean", (0.5,)), pcfg.get("std", (0.5,)), channels_last=wants_channels_last(model)).to(device)
    was_training = model.training
    model.eval().to(device)
    losses, probs = [], []
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)  # the autocast Lightning uses
    for i in range(0, len(data), batch_size):
        x = data.images[i:i + batch_size].to(device, non_blocking=True)
        y = data.labels[i:i + batch_size].to(device)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(prep(x)).float()
        losses.append(F.cross_entropy(logits, y, reduction="sum").item())
        probs.append(logits.softmax(1).cpu())
    model.train(was_training)
    if not probs:
        return Evaluation(float("nan"), float("nan"), torch.zeros(0, dtype=torch.long), data.labels, torch.zeros(0, data.num_classes))
    p = torch.cat(probs)
    preds = p.argmax(1)
    return Evaluation(sum(losses) / len(data), (preds == data.labels).sum().item() / len(data), preds, data.labels.clone(), p)


def evaluate_run(run_path: str | os.PathLike, device: str = "auto", data: Any = None, progress: bool = True) -> RunResult:
    """Evaluate every saved epoch checkpoint of a run on its val and test splits. The summary of the
    :class:`~convlens.runs.RunResult` (``result["epochs"]``, ...) is ``{"epochs": [{"epoch", "val_acc",
    "test_acc", ...}], "best_epoch", "best_by", "test_acc_at_best", "note"}``, also written to
    ``evaluation.json``, with ``plots/evaluation.png``; the best epoch follows the run's own ``best_by``."""
    from .._runtime import resolve_precision, select_device
    from ..reports.plots import plot_curves
    from .checkpoint import epoch_checkpoints, model_from_checkpoint, read_checkpoint

    run = RunDir.open(run_path)
    if not (ckpts := epoch_checkpoints(run.path)):
        raise ConvlensError(f"{run.path}: no epoch checkpoints in {run.checkpoints_dir} to evaluate")
    dev = select_device(device)
    precision = run.summary().get("precision") or resolve_precision(run.config.get("precision", "32-true"), dev)
    from tqdm import tqdm

    rows: list[dict[str, Any]] = []
    splits = data
    for epoch, path in tqdm(ckpts, desc=f"evaluating {run.name}", unit="ckpt", disable=not progress):
        model, meta = model_from_checkpoint(read_checkpoint(path), str(path))
        splits = splits if splits is not None else prepare_data(run.config, model, meta=meta)  # once, at the first model
        row: dict[str, Any] = {"epoch": epoch}
        for name, split in (("val", splits.get("val")), ("test", splits.get("test"))):
            if split is not None and len(split):
                ev = evaluate_model(model, split, device=dev, pretrained_cfg=meta["pretrained_cfg"], precision=precision)
                row[f"{name}_loss"], row[f"{name}_acc"] = ev.loss, ev.acc
        rows.append(row)
    # the rule the run declared (summary.json), applied as the run recorder applied it
    by = run.summary().get("best_by") or ("val_acc" if all("val_acc" in r for r in rows) else "last")
    by = by if by in ("last", "val_loss", "val_acc") else "last"
    best = BestBy(by).pick(rows) or rows[-1]
    result = {"run": str(run.path), "epochs": rows, "best_by": by, "best_epoch": best["epoch"], "test_acc_at_best": best.get("test_acc"),
              "note": (f"best epoch chosen on the validation split ({by}); test accuracy never used to choose" if by != "last" else
                       "no validation split in this run: the last epoch is its model (test accuracy was never used to choose); "
                       "train with --val-size > 0 to pick an epoch")}
    atomic_write_json(run.path / "evaluation.json", result)
    fig = run.save_figure(plot_curves(rows, title=f"{run.name}: every checkpoint evaluated"), "evaluation")
    return RunResult(run, rows, {**result, "test_acc": best.get("test_acc", float("nan"))}, {"evaluation": fig})
