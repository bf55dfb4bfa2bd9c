"""Models the explorer can use, each loaded once and kept.

A model is named by a *key*: ``pretrained:<name>`` (an offline ImageNet backbone,
``convlens.models.create_model(name, pretrained=True)``) or ``run:<path under the runs
folder>`` (rebuilt by ``convlens.engine.load_run_model``, which reads checkpoints with
``torch.load(weights_only=True)``). Both go through :func:`convlens.explain.load_model`, so the
preprocessing is the one the model was trained with.

Concurrency: a model's forward hooks (feature maps, Grad-CAM) are per module, so two requests
must never run on one model at once. Each :class:`Loaded` has one worker thread; requests
queue on it (:meth:`ModelCache.submit`), and more than ``max_waiting`` queued requests are
refused (HTTP 503). One thread also means one malloc arena: with the allocator tuned for
speed (``convlens._runtime.tune_allocator``: freed memory is kept, not returned), 50
requests spread over Starlette's pool threads kept tens of MB in each thread's arena,
~500 MB in all (measured); on one worker thread they reuse the same memory.
"""
from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConvlensError

PRETRAINED = ("efficientnet_lite0",)


@dataclass
class Loaded:
    """An :class:`~convlens.explain.Explainable` with its worker thread and what the page needs to list."""

    key: str
    ex: Any
    stages: list[str]
    layers: list[str]
    cam_default: str
    worker: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="convlens-model"))
    filters_png: bytes | None = None

    @property
    def first_conv(self) -> str | None:
        from ..explain.layers import conv_layers

        convs = conv_layers(self.ex.model)
        return convs[0] if convs else None


class Busy(Exception):
    pass


class ModelCache:
    """``get(key)`` loads a model the first time (warming it up with one blank explanation, so
    the first user image is as fast as the next) and returns the same object afterwards."""

    def __init__(self, runs_root: Path, max_models: int = 4, max_waiting: int = 64):
        self.runs_root = runs_root
        self.max_models = max_models
        self.max_waiting = max_waiting
        self._models: dict[str, Loaded] = {}
        self._loading = threading.Lock()
        self._waiting = 0
        self._count = threading.Lock()

    def keys(self) -> list[str]:
        return list(self._models)

    def get(self, key: str) -> Loaded:
        if key in self._models:
            return self._models[key]
        with self._loading:  # one load at a time: two users asking for one model load it once
            if key not in self._models:
                loaded = self._load(key)
                if len(self._models) >= self.max_models:  # keep memory bounded: drop the oldest
                    self._models.pop(next(iter(self._models))).worker.shutdown(wait=False)
                self._models[key] = loaded
            return self._models[key]

    def _load(self, key: str) -> Loaded:
        import torch

        from ..explain import load_model
        from ..explain.layers import cam_target_layer, spatial_layers, stage_layers

        kind, _, name = key.partition(":")
        if kind == "pretrained":
            if name not in PRETRAINED:
                raise ConvlensError(f"model {key!r}: the explorer offers the pretrained backbones {', '.join(PRETRAINED)}")
            ex = load_model(name, device="cpu")
        elif kind == "run":
            from .files import safe_path

            run = safe_path(self.runs_root, name)
            if run is None or not (run / "config.json").is_file():
                raise ConvlensError(f"model {key!r}: no run folder {name!r} under {self.runs_root}")
            ex = load_model(run, device="cpu")
        else:
            raise ConvlensError(f"model {key!r}: write pretrained:<name> or run:<run folder>")
        try:
            stages = stage_layers(ex.model, ex.input_size)
            layers = [li.name for li in spatial_layers(ex.model, ex.input_size)]
            cam_default = cam_target_layer(ex.model, ex.input_size)
        except ConvlensError:  # a model with no feature map (the chapter's DNN): predictions only
            stages, layers, cam_default = [], [], ""
        loaded = Loaded(key, ex, stages, layers, cam_default)
        if layers:  # warm-up: pytorch-grad-cam's imports and first-call costs, paid at load time
            from ..explain import explain_image

            c, h, w = ex.input_size
            explain_image(ex, torch.zeros((c, h, w), dtype=torch.uint8), layers=stages)
        return loaded

    def submit(self, loaded: Loaded, fn: Any, *args: Any) -> Future:
        """``fn(*args)`` on the model's worker thread; :class:`Busy` when too many wait already."""
        with self._count:
            if self._waiting >= self.max_waiting:
                raise Busy(self._waiting)
            self._waiting += 1

        def done(_: Future) -> None:
            with self._count:
                self._waiting -= 1

        fut = loaded.worker.submit(fn, *args)
        fut.add_done_callback(done)
        return fut
