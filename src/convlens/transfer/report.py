"""Run records of feature-extraction runs, without importing Lightning.

A feature-extraction run must take seconds when its features are cached; importing the
engine package (Lightning) alone costs several seconds on the project's machines. So this
file writes the same figures and ``report.html`` as
:mod:`convlens.engine.report`, from the shared plotting functions (the head-only checkpoints
themselves are written by :mod:`convlens.transfer.run`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..runs import RunDir


@dataclass
class HeadEvaluation:
    """Test predictions of the chosen head (the fields the engine's ``Evaluation`` has)."""

    loss: float
    acc: float
    preds: torch.Tensor
    targets: torch.Tensor
    probs: torch.Tensor

    def confusion(self, num_classes: int) -> np.ndarray:
        cm = np.zeros((num_classes, num_classes), dtype=np.int64)
        np.add.at(cm, (self.targets.numpy(), self.preds.numpy()), 1)
        return cm

    def most_confidently_wrong(self, k: int = 10) -> torch.Tensor:
        wrong = (self.preds != self.targets).nonzero().flatten()
        conf = self.probs[wrong, self.preds[wrong]]
        return wrong[conf.argsort(descending=True)[:k]]


def prediction_sample(n_total: int, k: int = 20, seed: int = 0) -> torch.Tensor:
    """A fixed, seeded choice of test images (the engine's rule, so grids match across runs)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n_total, generator=g)[: min(k, n_total)].sort().values


def write_report(run: RunDir, test_images: Any, final: HeadEvaluation, history: list[dict[str, Any]], classes: list[str],
                 summary: dict[str, Any], title: str, notes: list[str]) -> dict[str, Path]:
    """Curves, confusion matrix, the chapter's prediction grid (pred(true), green/red), the
    most confidently wrong test images, then ``report.html``. ``test_images[idx]`` returns
    uint8 (n, C, H, W): only the shown images are decoded."""
    from ..reports import Report, plot_confusion_matrix, plot_curves, plot_prediction_grid

    figs: dict[str, Path] = {"curves": run.save_figure(plot_curves(history, title=title), "curves")}
    if len(final.targets):
        cm = final.confusion(len(classes))
        figs["confusion"] = run.save_figure(plot_confusion_matrix(cm, classes, title=f"{title}: test confusion"), "confusion_matrix")
        sample = prediction_sample(len(final.targets))
        figs["predictions"] = run.save_figure(plot_prediction_grid(
            test_images[sample].float() / 255.0, final.preds[sample].tolist(), final.targets[sample].tolist(), classes,
            title="test predictions: pred(true), green = right, red = wrong"), "predictions")
        wrong = final.most_confidently_wrong(10)
        if len(wrong):
            figs["wrong"] = run.save_figure(plot_prediction_grid(
                test_images[wrong].float() / 255.0, final.preds[wrong].tolist(), final.targets[wrong].tolist(), classes,
                probs=final.probs[wrong, final.preds[wrong]].tolist(), ncols=5,
                title="most confidently wrong test images (confidence of the wrong class)"), "most_confidently_wrong")
    r = Report(f"convlens: {title}", subtitle=f"run folder {run.path}")
    r.heading("Result")
    r.table([{"what": k, "value": v} for k, v in summary.items() if not isinstance(v, (dict, list))])
    for n in notes:
        r.note(n)
    r.heading("Learning curves")
    r.image(figs["curves"], "loss and accuracy per epoch of the head (val picks the best epoch; test is only reported)")
    r.heading("Per-epoch metrics")
    cols = [c for c in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "seconds")
            if any(c in h for h in history)]
    r.table(history, cols)
    if "confusion" in figs:
        r.heading("Where it goes wrong")
        r.image(figs["confusion"], "confusion matrix (rows: true class)")
        r.image(figs["predictions"], "20 fixed test images")
        if "wrong" in figs:
            r.image(figs["wrong"], "the most confidently wrong")
    if summary.get("skipped_files"):
        r.heading("Skipped files")
        r.table([{"file: reason": s} for s in summary["skipped_files"]])
    r.heading("Recipe")
    rec = run.record
    r.table([{"setting": k, "value": v} for k, v in rec["config"].items() if not isinstance(v, dict)])
    r.heading("Versions")
    r.table([{"package": k, "version": v} for k, v in rec["versions"].items()])
    r.write(run.path / RunDir.REPORT)
    return figs


__all__ = ["HeadEvaluation", "prediction_sample", "write_report"]
