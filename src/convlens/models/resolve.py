"""The one model resolver: what every verb that takes ``MODEL`` (``shapes``, ``explain``,
``predict``) means by it -- a run folder, a checkpoint file or a model name."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch.nn as nn

from ..errors import ConvlensError

CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth")


def resolve_model(spec: str | os.PathLike, which: str | int = "best", pretrained: bool = False) -> tuple[nn.Module, dict[str, Any]]:
    """``(model, meta)`` for a run folder (its ``which`` checkpoint: ``best``, ``last`` or an
    epoch), a ``.ckpt`` file, or a name for :func:`~convlens.models.create_model` (with ImageNet
    weights when ``pretrained``). ``meta``: ``model_name``, ``classes`` (None for a bare name),
    ``pretrained_cfg``, and ``label``/``source`` saying where the model came from."""
    p = Path(spec)
    if p.is_dir() or (p.is_file() and p.suffix in CHECKPOINT_SUFFIXES):
        from ..engine.checkpoint import load_run_model
        from ..runs import RunDir

        if p.is_dir() and not RunDir.is_run(p):
            raise ConvlensError(f"{p}: a folder but not a convlens run (no config.json); pass a run folder or a model name")
        model, meta = load_run_model(p, which=which)
        where = f"run {p.name}" if p.is_dir() else p.name
        return model, {**meta, "label": f"{meta.get('model_name', '?')} ({where})", "source": str(p)}
    name = str(spec)
    if name.endswith(CHECKPOINT_SUFFIXES) or (os.sep in name and not name.startswith(("tv/", "graph/"))):
        raise ConvlensError(f"{name}: no such run folder or checkpoint file")
    from .registry import create_model

    model = create_model(name, pretrained=pretrained)
    return model, {"model_name": name, "classes": None, "pretrained_cfg": dict(getattr(model, "pretrained_cfg", None) or {}),
                   "label": name, "source": f"create_model({name!r}, pretrained={pretrained})"}
