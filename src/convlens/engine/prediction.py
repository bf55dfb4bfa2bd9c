"""``convlens predict RUN image ...``: class probabilities from any run folder.

The model is rebuilt from the run's checkpoint (``best`` by default) and each image goes
through the preprocessing recorded with it (resize, crop, mean/std of the weights), so a
prediction sees exactly what training saw.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from ..errors import ConvlensError, DataError


@dataclass
class Prediction:
    """One image's result: ``probs`` (K,) softmax over ``classes``, best first in ``top``."""

    path: str
    classes: list[str]
    probs: torch.Tensor
    error: str | None = None

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        if self.error:
            return []
        p, i = self.probs.sort(descending=True)
        return [(self.classes[j], float(q)) for q, j in zip(p[:k].tolist(), i[:k].tolist())]


def predict(run: str | os.PathLike, images: Sequence[str | os.PathLike], which: str | int = "best",
            device: str = "auto", batch_size: int = 32) -> list[Prediction]:
    """Softmax probabilities of every image under the run's model; unreadable images get
    ``error`` set (and no probabilities) instead of stopping the others."""
    from .._runtime import select_device
    from ..data.folders import Preprocess, load_image
    from ..data.prepare import fit_images
    from .checkpoint import load_run_model
    from .preprocess import normalise

    if not images:
        raise ConvlensError("predict: give at least one image file after the run folder")
    model, meta = load_run_model(run, which=which)
    dev = select_device(device)
    model.to(dev).eval()
    pcfg = meta.get("pretrained_cfg", {}) or {}
    pp = Preprocess.from_config(pcfg)
    classes = list(meta["classes"])
    out: list[Prediction] = []
    ok: list[tuple[int, torch.Tensor]] = []
    for p in images:
        error = None if Path(p).is_file() else "no such file"
        if error is None:
            try:
                ok.append((len(out), load_image(p, pp)))
            except DataError as exc:
                error = str(exc).split(": ", 1)[-1]
        out.append(Prediction(str(p), classes, torch.zeros(0), error))
    with torch.no_grad():
        for s in range(0, len(ok), batch_size):
            chunk = ok[s:s + batch_size]
            x = fit_images(torch.stack([t for _, t in chunk]), pp.channels, pp.image_size).to(dev)
            probs = model(normalise(x, pcfg.get("mean", (0.5,)), pcfg.get("std", (0.5,)))).float().softmax(1).cpu()
            for (i, _), pr in zip(chunk, probs):
                out[i].probs = pr
    return out


def format_predictions(preds: list[Prediction], k: int = 5) -> str:
    """Human-readable lines: ``photo.jpg: Cat 97.1%, Dog 2.9%``."""
    return "\n".join(f"{p.path}: cannot predict ({p.error})" if p.error else
                     f"{p.path}: " + ", ".join(f"{c} {q:.1%}" for c, q in p.top(k)) for p in preds)
