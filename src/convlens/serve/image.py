"""The Image page's work: one uploaded picture through one model.

Everything is the explain package's: :func:`convlens.explain.explain_image` gives the
prediction, the Grad-CAM of the predicted class at the chosen layer and the feature maps of
every stage in one pass; :func:`convlens.explain.get_filters` / ``plot_filters`` the first
layer's kernels. This module only turns them into JSON and PNGs.
"""
from __future__ import annotations

import threading
import time
from typing import Any

import torch

from .models import Loaded
from ..runs import figure_png
from .pictures import cam_overlay_png, data_uri, feature_grid_png, input_png

#: matplotlib's pyplot is not thread-safe; figures are made one at a time.
PLOT_LOCK = threading.Lock()


def top5(classes: list[str], probs: Any, k: int = 5) -> list[dict[str, Any]]:
    p = torch.as_tensor(probs).flatten()
    vals, idx = p.topk(min(k, p.numel()))
    return [{"index": int(i), "class": classes[int(i)], "prob": float(v)} for v, i in zip(vals, idx)]


def predict(loaded: Loaded, image: Any) -> dict[str, Any]:
    """Top-5 only: one forward pass without gradients."""
    from ..explain import prepare_image

    t0 = time.perf_counter()
    ex = loaded.ex
    img = prepare_image(image, ex)
    with torch.no_grad():
        probs = ex.model(img.x).float().softmax(-1)[0]
    return {"model": loaded.key, "top5": top5(ex.classes, probs), "seconds": time.perf_counter() - t0}


def explain(loaded: Loaded, image: Any, layer: str | None = None, k: int = 8) -> dict[str, Any]:
    """Top-5, the CAM overlay at ``layer`` (default: the last feature map), each stage's ``k``
    strongest channels, and the first-layer filters."""
    from ..explain import explain_image

    t0 = time.perf_counter()
    ex = loaded.ex
    if not loaded.layers:  # no feature map (a DNN): predictions are all there is
        out = predict(loaded, image)
        out["note"] = "this model has no convolutional layer: no CAM, feature maps or filters"
        return out
    e = explain_image(ex, image, cam_layer=layer or None, layers=loaded.stages)
    cam = e.cam
    out = {
        "model": loaded.key,
        "model_name": ex.name,
        "top5": top5(ex.classes, cam.probs),
        "cam_layer": cam.layer,
        "cam_class": cam.cams[0].class_name,
        "input": data_uri(input_png(e.image)),
        "cam": data_uri(cam_overlay_png(e.image, cam.cams[0].heatmap)),
        "feature_maps": [{"layer": fm.layer, "shape": list(fm.activations.shape),
                          "channels": fm.top(k), "strength": [float(fm.strength[c]) for c in fm.top(k)],
                          "png": data_uri(feature_grid_png(fm, k))} for fm in e.feature_maps],
        "filters": data_uri(filters_png(loaded)) if loaded.first_conv else None,
        "filters_layer": loaded.first_conv,
    }
    out["seconds"] = time.perf_counter() - t0
    return out


def filters_png(loaded: Loaded) -> bytes:
    """The first conv layer's kernels (``convlens.explain.plot_filters``), drawn once per model."""
    if loaded.filters_png is None:
        from ..explain import plot_filters

        with PLOT_LOCK:
            loaded.filters_png = figure_png(plot_filters(loaded.ex.model, [loaded.first_conv]), dpi=80)
    return loaded.filters_png
