"""What every explanation starts from: a model in eval mode, its preprocessing and its classes.

An :class:`Explainable` bundles an ``nn.Module`` with the exact preprocessing it was trained
with (:class:`convlens.data.folders.Preprocess`, then ``(x/255 - mean) / std``) and its class
names. :func:`prepare_image` returns both the normalised tensor fed to the model and the uint8
pixels it was made from, so every overlay is drawn on exactly what the network saw.
"""
from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from .._runtime import select_device
from ..data.folders import Preprocess, _to_mode, open_image
from ..engine.preprocess import normalise
from ..errors import ConvlensError
from ..models.external import IMAGENET_MEAN, IMAGENET_STD
from ..models.resolve import resolve_model


@dataclass
class Explainable:
    """A model to explain. ``model`` is kept in eval mode; ``classes[i]`` names logit ``i``."""

    model: nn.Module
    preprocess: Preprocess
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: list[str]
    name: str = "model"
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def input_size(self) -> tuple[int, int, int]:
        p = self.preprocess
        return (p.channels, p.image_size, p.image_size)

    @property
    def device(self) -> torch.device:
        return next((p.device for p in self.model.parameters()), torch.device("cpu"))

    def class_index(self, name_or_index: str | int) -> int:
        """``--class`` on this model's classes (:func:`resolve_class`)."""
        return resolve_class(self.classes, name_or_index)


def default_classes(num_classes: int) -> list[str]:
    """The 1,000 ImageNet-1k descriptions in logit order (from timm, no download), else ``class i``."""
    if num_classes == 1000:
        from timm.data import ImageNetInfo

        info = ImageNetInfo()
        return [info.index_to_description(i) for i in range(1000)]
    return [f"class {i}" for i in range(num_classes)]


def resolve_class(classes: Sequence[str], name_or_index: str | int) -> int:
    """Index of a class given by index, full name or one of its comma-separated synonyms (ImageNet:
    ``"tabby"``, ``"tabby cat"``), case-insensitive; a :class:`ConvlensError` otherwise."""
    text = str(name_or_index).strip()
    if text.lstrip("-").isdigit():
        i = int(text)
        if not -len(classes) <= i < len(classes):
            raise ConvlensError(f"--class {text}: index out of range; the model has {len(classes)} classes (0-{len(classes) - 1})")
        return i % len(classes)
    low = text.lower()
    # the first kind of match that finds anything decides; more than one class is ambiguous
    for matches in (lambda c: c.lower() == low,
                    lambda c: low in (s.strip().lower() for s in c.split(",")),  # ImageNet's "tabby, tabby cat"
                    lambda c: re.search(rf"\b{re.escape(low)}\b", c.lower()),  # "cat": the five cats, not "oystercatcher"
                    lambda c: low in c.lower()):
        cands = [i for i, c in enumerate(classes) if matches(c)]
        if len(cands) == 1:
            return cands[0]
        if cands:
            shown = "; ".join(f"{i} {classes[i]!r}" for i in cands[:8]) + ("; ..." if len(cands) > 8 else "")
            raise ConvlensError(f"--class {text!r} matches {len(cands)} classes ({shown}): pass one full name or its index")
    close = difflib.get_close_matches(text, list(classes), n=5, cutoff=0.5)
    hint = f"close names: {', '.join(repr(c) for c in close)}" if close else (
        f"classes are {', '.join(repr(c) for c in classes[:12])}{', ...' if len(classes) > 12 else ''}")
    raise ConvlensError(f"--class {text!r} is not one of the model's {len(classes)} classes; {hint} (or pass an index)")


def from_module(model: nn.Module, classes: Sequence[str] | None = None, preprocess: Preprocess | None = None,
                mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                name: str | None = None, source: str = "", meta: dict[str, Any] | None = None) -> Explainable:
    """Wrap any classifier. Preprocessing defaults to the model's ``pretrained_cfg`` (timm's data config)."""
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    if preprocess is None:
        from timm.data import resolve_data_config

        dc = resolve_data_config({}, pretrained_cfg=cfg) if cfg else {"input_size": (3, 224, 224), "crop_pct": 0.875, "interpolation": "bilinear"}
        preprocess = Preprocess.from_config(dc)
    c = preprocess.channels
    mean = tuple(float(v) for v in (mean or cfg.get("mean") or IMAGENET_MEAN[:c] or (0.5,)))
    std = tuple(float(v) for v in (std or cfg.get("std") or IMAGENET_STD[:c] or (0.5,)))
    if len(mean) == 1 and c > 1:
        mean, std = mean * c, std * c
    if len(mean) != c or len(std) != c:
        raise ConvlensError(f"preprocessing has {c} channels but mean/std have {len(mean)}/{len(std)} values")
    num_classes = int(getattr(model, "num_classes", 0) or cfg.get("num_classes") or 0)
    if classes is None:
        if num_classes <= 0:
            raise ConvlensError("the model has no num_classes attribute: pass classes=[...]")
        classes = default_classes(num_classes)
    return Explainable(model.eval(), preprocess, mean, std, list(classes), name or getattr(model, "convlens_name", type(model).__name__),
                       source, dict(meta or {}))


def load_model(spec: str | os.PathLike, which: str | int = "best", device: str | torch.device = "cpu") -> Explainable:
    """``spec`` is a run folder / ``.ckpt`` file (rebuilt by ``convlens.engine.load_run_model``)
    or a model name (``convlens.models.create_model(name, pretrained=True)``)."""
    dev = select_device(str(device)) if not isinstance(device, torch.device) else device
    try:
        model, meta = resolve_model(spec, which=which, pretrained=True)
    except ConvlensError as exc:
        if "no pretrained weights" in str(exc):
            raise ConvlensError(f"model {spec!r} has no pretrained weights to explain: pass a run folder that trained it "
                                f"(e.g. runs/<name> from `convlens train --model {spec}`)") from exc
        raise
    if meta["classes"] is None:  # a bare model name
        return from_module(model.to(dev), name=meta["label"], source=meta["source"])
    # a run: the checkpoint's pretrained_cfg is the preprocessing it trained with (no crop_pct: 1.0)
    pcfg = meta.get("pretrained_cfg") or {}
    return from_module(model.to(dev), classes=meta["classes"], preprocess=Preprocess.from_config(pcfg),
                       mean=pcfg.get("mean"), std=pcfg.get("std"), name=meta["label"], source=meta["source"], meta=meta)


@dataclass
class PreparedImage:
    """``x``: (1, C, H, W) float, normalised, on the model's device; ``pixels``: (C, H, W) uint8,
    the same picture before normalisation (what the overlays are drawn on)."""

    x: torch.Tensor
    pixels: torch.Tensor
    name: str = "image"

    def display(self) -> np.ndarray:
        """(H, W, 3) or (H, W) float in [0, 1] for matplotlib."""
        a = self.pixels.permute(1, 2, 0).numpy().astype(np.float32) / 255.0
        return a[..., 0] if a.shape[-1] == 1 else a


def prepare_image(image: Any, ex: Explainable, name: str | None = None) -> PreparedImage:
    """A path, a PIL image, or uint8 pixels (C, H, W) already at the model's size -> :class:`PreparedImage`."""
    if isinstance(image, PreparedImage):
        return image
    if isinstance(image, (str, os.PathLike)):
        p = Path(image)
        if not p.is_file():
            raise ConvlensError(f"{p}: no such image file")
        try:
            pil = open_image(p, ex.preprocess.channels)
        except ConvlensError as exc:
            raise ConvlensError(f"{exc}; pass a photo (.jpg, .png, ...)") from None
        pixels = ex.preprocess.transform()(pil)
        name = name or p.stem
    elif isinstance(image, torch.Tensor):
        pixels = image if image.dim() == 3 else image[0]
        if pixels.dtype != torch.uint8:
            raise ConvlensError("an image tensor must be uint8 (C, H, W); pass a path or PIL image otherwise")
        if tuple(pixels.shape) != ex.input_size:
            raise ConvlensError(f"image tensor of shape {tuple(pixels.shape)} but the model expects {ex.input_size}")
    else:  # PIL
        pixels = ex.preprocess.transform()(_to_mode(image, ex.preprocess.channels))
    pixels = pixels.contiguous()
    return PreparedImage(normalise(pixels, ex.mean, ex.std).unsqueeze(0).to(ex.device), pixels.cpu(), name or "image")
