"""The plots and ``report.html`` every image-classification run ends with (train, compare's
members, both transfer strategies). Drawn from the final ``summary.json``, so the page shows
every number the run recorded; no Lightning here (feature extraction stays fast)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..i18n import t
from ..runs import RunDir
from .evaluate import Evaluation

REPORT_SKIPPED_SHOWN = 20  # rows of the "Skipped files" table; summary.json keeps every one


def prediction_sample(n_total: int, k: int = 20, seed: int = 0) -> torch.Tensor:
    """A fixed, seeded choice of test images for the prediction grid (same across runs)."""
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[: min(k, n_total)].sort().values


def write_run_report(run: RunDir, test_images: Any, final: Evaluation, history: list[dict[str, Any]], classes: list[str],
                     summary: dict[str, Any], title: str, notes: list[str] | None = None) -> dict[str, Path]:
    """Curves, confusion matrix, per-class accuracy, the chapter's prediction grid (pred(true),
    green/red) and the most confidently wrong test images; then one self-contained ``report.html``.
    ``test_images``: an :class:`~convlens.data.ImageTensors` or anything whose ``[idx]`` gives
    uint8 ``(n, C, H, W)`` as the model saw them (only the shown images are decoded)."""
    from ..reports import Report, plot_confusion_matrix, plot_curves, plot_per_class_accuracy, plot_prediction_grid

    images = getattr(test_images, "images", test_images)
    figs: dict[str, Path] = {"curves": run.save_figure(plot_curves(history, title=title), "curves")}
    if len(final.targets):
        cm = final.confusion(len(classes))
        figs["confusion"] = run.save_figure(plot_confusion_matrix(cm, classes, title=f"{title}: test confusion"), "confusion_matrix")
        figs["per_class"] = run.save_figure(plot_per_class_accuracy(cm, classes), "per_class_accuracy")
        for key, idx, ncols, caption in (("predictions", prediction_sample(len(final.targets)), None,
                                          "test predictions: pred(true), green = right, red = wrong"),
                                         ("wrong", final.most_confidently_wrong(10), 5,
                                          "most confidently wrong test images (confidence of the wrong class)")):
            if len(idx):
                probs = final.probs[idx, final.preds[idx]].tolist() if key == "wrong" else None
                figs[key] = run.save_figure(plot_prediction_grid(
                    images[idx].float() / 255.0, final.preds[idx].tolist(), final.targets[idx].tolist(), classes,
                    probs=probs, title=caption, **({"ncols": ncols} if ncols else {})),
                    "predictions" if key == "predictions" else "most_confidently_wrong")

    r = Report(f"convlens: {title}", subtitle=f"run folder {run.path}")
    r.heading("Result").table([{"what": k, "value": v} for k, v in summary.items() if not isinstance(v, (dict, list))])
    for n in notes or []:
        r.note(n)
    for key, value in summary.items():  # a verdict recorded as a mapping (auto's decision and outcome)
        if isinstance(value, dict) and value and all(not isinstance(v, (dict, list)) for v in value.values()):
            r.heading(key.replace("_", " ")).table([{"what": k, "value": v} for k, v in value.items()])
    r.heading("Learning curves")
    r.image(figs["curves"], "loss and accuracy per epoch (the best epoch is chosen on validation; test is only reported)")
    cols = [c for c in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "seconds", "images_per_s")
            if any(c in h for h in history)]
    r.heading("Per-epoch metrics").table(history, cols)
    if "confusion" in figs:
        r.heading("Where it goes wrong")
        for key, caption in (("confusion", "confusion matrix (rows: true class)"), ("per_class", "accuracy per class"),
                             ("predictions", "20 fixed test images"), ("wrong", "the most confidently wrong")):
            if key in figs:
                r.image(figs[key], caption)
    if skipped := summary.get("skipped_files"):
        rows = [{"file: reason": s} for s in skipped[:REPORT_SKIPPED_SHOWN]]
        if len(skipped) > REPORT_SKIPPED_SHOWN:
            rows.append({"file: reason": t("skipped_more", n=len(skipped) - REPORT_SKIPPED_SHOWN)})
        r.heading("Skipped files").table(rows)
    rec = run.record
    r.heading("Recipe").table([{"setting": k, "value": v} for k, v in rec["config"].items() if not isinstance(v, dict)])
    r.heading("Versions").table([{"package": k, "version": v} for k, v in rec["versions"].items()])
    r.write(run.path / RunDir.REPORT)
    return figs
