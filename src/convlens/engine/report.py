"""The plots and ``report.html`` every training run ends with."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..reports import Report, plot_confusion_matrix, plot_curves, plot_per_class_accuracy, plot_prediction_grid
from ..runs import RunDir
from .evaluate import Evaluation


def prediction_sample(n_total: int, k: int = 20, seed: int = 0) -> torch.Tensor:
    """A fixed, seeded choice of test images for the prediction grid (same across runs)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n_total, generator=g)[: min(k, n_total)].sort().values


def write_run_report(run: RunDir, model: nn.Module, splits: dict[str, Any], final: Evaluation,
                     history: list[dict[str, Any]], meta: dict[str, Any], summary: dict[str, Any],
                     title: str | None = None, notes: list[str] | None = None) -> dict[str, Path]:
    """Curves, confusion matrix, per-class accuracy, the chapter's prediction grid and the
    most confidently wrong test images; then one self-contained ``report.html``."""
    classes = meta["classes"]
    test = splits["test"]
    name = title or f"{meta['model_name']} on {splits.get('name', run.config.get('data'))}"
    cm = final.confusion(len(classes))
    figs = {
        "curves": run.save_figure(plot_curves(history, title=name), "curves"),
        "confusion": run.save_figure(plot_confusion_matrix(cm, classes, title=f"{name}: test confusion"), "confusion_matrix"),
        "per_class": run.save_figure(plot_per_class_accuracy(cm, classes), "per_class_accuracy"),
    }
    sample = prediction_sample(len(test))
    # the images as the model saw them (resized to its input), drawn as pixels, not normalised
    to_float = lambda idx: test.images[idx].float() / 255.0  # noqa: E731
    figs["predictions"] = run.save_figure(plot_prediction_grid(
        to_float(sample), final.preds[sample].tolist(), final.targets[sample].tolist(), classes,
        title="test predictions: pred(true), green = right, red = wrong"), "predictions")
    wrong = final.most_confidently_wrong(10)
    if len(wrong):
        figs["wrong"] = run.save_figure(plot_prediction_grid(
            to_float(wrong), final.preds[wrong].tolist(), final.targets[wrong].tolist(), classes,
            probs=final.probs[wrong, final.preds[wrong]].tolist(), ncols=5,
            title="most confidently wrong test images (confidence of the wrong class)"), "most_confidently_wrong")

    r = Report(f"convlens: {name}", subtitle=f"run folder {run.path}")
    r.heading("Result")
    r.table([{"what": k, "value": v} for k, v in summary.items()])
    for n in notes or []:
        r.note(n)
    r.heading("Learning curves")
    r.image(figs["curves"], "loss and accuracy per epoch (val picks the best epoch; test is only reported)")
    r.heading("Per-epoch metrics")
    cols = [c for c in ("epoch", "train_loss", "train_acc", "val_acc", "test_acc", "seconds", "images_per_s") if any(c in h for h in history)]
    r.table(history, cols)
    r.heading("Where it goes wrong")
    r.image(figs["confusion"], "confusion matrix (rows: true class)")
    r.image(figs["per_class"], "accuracy per class")
    r.image(figs["predictions"], "20 fixed test images")
    if "wrong" in figs:
        r.image(figs["wrong"], "the most confidently wrong")
    r.heading("Recipe")
    rec = run.record
    r.table([{"setting": k, "value": v} for k, v in rec["config"].items()])
    r.heading("Versions")
    r.table([{"package": k, "version": v} for k, v in rec["versions"].items()])
    r.write(run.path / RunDir.REPORT)
    return figs
