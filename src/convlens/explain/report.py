"""HTML pages (self-contained, via :class:`convlens.reports.Report`): one per image, with the
prediction, the CAM(s) and the feature maps by stage; an ``index.html`` linking them. For a run,
:func:`report_wrong` does it for the N test images the model got wrong most confidently, with
the CAM of the true class next to the predicted one: *why* it failed.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConvlensError
from ..reports import Report
from .base import Explainable, load_model, prepare_image
from .pipeline import Explanation, explain_image


def explanation_page(e: Explanation, out_file: str | os.PathLike, true_class: str | None = None) -> Path:
    """Write one image's page (figures closed after they are inlined)."""
    import matplotlib.pyplot as plt

    cam = e.cam
    pred = cam.cams[0]
    verdict = "" if true_class is None else " (correct)" if true_class == pred.class_name else f" (WRONG: true class {true_class})"
    r = Report(f"{e.image.name}: {pred.class_name} {pred.prob:.1%}{verdict}", subtitle=f"model {e.model_name}")
    r.link("index.html", "all images")
    r.heading("Prediction").table([{"rank": i + 1, "class": cam.classes[c] if cam.classes else c, "index": c,
                                    "probability": f"{p:.2%}"} for i, (c, p) in enumerate(cam.topk(5))])
    figs = e.figures()
    r.heading(f"Class activation map ({cam.method} at layer {cam.layer})")
    r.text("Red = regions whose activations raise the class's score most (Grad-CAM: α_k = mean over pixels of ∂y_c/∂A_k, "
           "L = ReLU(Σ_k α_k A_k), upsampled to the input).", cls="muted").image(figs["cam"])
    r.heading("Feature maps by stage (low -> high level)")
    r.text("The strongest channels of each stage on this image (ranked by mean |activation|), not the first 16.",
           cls="muted").image(figs["feature_maps"])
    for fig in figs.values():
        plt.close(fig)
    return r.write(out_file)


def write_reports(ex: Explainable, images: Sequence[Any], out: str | os.PathLike, method: str = "gradcam",
                  classes: Sequence[str | int] = (), layers: Sequence[str | int] | None = None) -> Path:
    """One page per image file plus ``index.html``; returns the index's path."""
    out = Path(out)
    idx = Report(f"Explanations: {ex.name}", subtitle=f"{len(images)} images, {method}")
    for image in images:
        e = explain_image(ex, image, method=method, layers=layers, classes=classes)
        page = f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', e.image.name)[:80] or 'image'}.html"  # a safe file name
        explanation_page(e, out / page)
        pred = e.cam.cams[0]
        idx.link(page, f"{e.image.name}: {pred.class_name} ({pred.prob:.1%})")
    return idx.write(out / "index.html")


def most_confidently_wrong(run: str | os.PathLike, n: int = 10, which: str | int = "best", device: str = "cpu") -> tuple[Explainable, Any, list[int], Any]:
    """``(explainable, test split, indices of the n most confidently wrong test images, Evaluation)``,
    the test split rebuilt exactly as the run trained (``convlens.engine.prepare_data``)."""
    from ..engine import evaluate_model, prepare_data
    from ..runs import RunDir

    config = RunDir.open(run).config
    ex = load_model(run, which=which, device=device)
    test = prepare_data(config, ex.model, meta=ex.meta)["test"]
    if len(test) == 0:
        raise ConvlensError(f"{run}: the run's test split is empty; nothing to report")
    ev = evaluate_model(ex.model, test, device=ex.device, pretrained_cfg={"mean": ex.mean, "std": ex.std})
    return ex, test, [int(i) for i in ev.most_confidently_wrong(n)], ev


def report_wrong(run: str | os.PathLike, out: str | os.PathLike, n: int = 10, which: str | int = "best",
                 method: str = "gradcam", device: str = "cpu") -> Path:
    """Pages for the ``n`` test images the run's model got wrong with the highest confidence,
    each with the CAM of the predicted and of the true class; returns ``index.html``."""
    ex, test, wrong, ev = most_confidently_wrong(run, n, which, device)
    out = Path(out)
    idx = Report(f"Most confidently wrong test images: {ex.name}",
                 subtitle=f"test accuracy {ev.acc:.2%}; {int((ev.preds != ev.targets).sum())} of {len(test)} wrong; "
                          f"the {len(wrong)} most confident mistakes")
    for rank, i in enumerate(wrong, 1):
        true = int(test.labels[i])
        name = f"wrong{rank:02d}-test{i}"
        e = explain_image(ex, prepare_image(test.images[i], ex, name=name), method=method, classes=[true])
        page = f"{name}.html"
        explanation_page(e, out / page, true_class=ex.classes[true])
        pred = e.cam.cams[0]
        idx.link(page, f"#{rank} test image {i}: predicted {pred.class_name} ({pred.prob:.1%}), true {ex.classes[true]}")
    if not wrong:
        idx.note("The model got every test image right.")
    return idx.write(out / "index.html")
