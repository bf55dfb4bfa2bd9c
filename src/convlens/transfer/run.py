"""``transfer()``: one function behind ``convlens transfer``; it only dispatches, to
:mod:`.feature_extract`, :mod:`.fine_tune`, or for ``auto`` to :mod:`.auto` and then one of the two
(:mod:`.lpft` when it fine-tunes). Every strategy returns a :class:`~convlens.runs.RunResult`.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from .._runtime import seed_everything, select_device, set_threads, tune_allocator
from ..data.prepare import notice, require_two_classes, warn_missing_classes
from .auto import decide
from .backbones import load_backbone
from .config import TransferConfig, TransferResult, with_input_size
from .feature_extract import extract, run_feature_extract
from .features import resolve_cache_dir
from .fine_tune import readable_split, resume as resume_fine_tune, run_fine_tune
from .lpft import probe_then_fine_tune
from .sources import Source, folder_sources, named_sources


def _load_sources(cfg: TransferConfig, log: Callable[[str], None]) -> tuple[Source, Source | None]:
    from ..data.registry import list_datasets

    key = cfg.data.lower().replace("_", "-")
    if key in list_datasets() or key in ("fashionmnist", "fmnist"):
        return named_sources(cfg.data, cfg.data_dir)
    train, test, warns = folder_sources(cfg.data, cfg.test_fraction)
    for w in warns:
        log(f"warning: {w}")
    return train, test


def transfer(cfg: TransferConfig, resume: str | None = None, log: Callable[[str], None] | None = None,
             epochs: int | None = None, listeners: Iterable[Any] = ()) -> TransferResult:
    """Run ``cfg`` and write a complete run folder (see the module docstring).

    ``resume``: continue that fine-tune run from its last complete epoch, with its own recipe
    (``cfg`` is then ignored); ``epochs``: with ``resume``, train up to this many in all.
    ``listeners``: progress listeners (:mod:`convlens.events`) besides ``events.jsonl``.
    """
    log = log or notice
    t0 = time.perf_counter()
    tune_allocator()
    set_threads()
    if cfg.progress:
        from ..reports.progress import TqdmBar

        listeners = [*listeners, TqdmBar()]
    if resume is not None:
        return resume_fine_tune(cfg, resume, _load_sources, log, epochs, listeners)
    seed_everything(cfg.seed)
    device = select_device(cfg.device)
    train_src, test_src = _load_sources(cfg, log)
    classes = train_src.classes
    require_two_classes(classes, cfg.data)  # one class: '100% accuracy' and nothing learned
    cfg = with_input_size(cfg, train_src.native_px, log)
    # with a feature cache, a backbone seen before comes as a card: its network is built only if needed
    card_cache = resolve_cache_dir(cfg.cache_dir) if cfg.strategy in ("feature-extract", "auto") else None
    backbone = load_backbone(cfg.backbone, num_classes=len(classes), weights=cfg.weights, image_size=cfg.image_size,
                             cache_dir=card_cache)
    strategy, decision, unfreeze, augment = cfg.strategy, None, cfg.unfreeze, cfg.augment
    feats = None
    if strategy in ("feature-extract", "auto") or cfg.head_init == "probe":
        feats = extract(cfg, backbone, train_src, test_src, device, log, views=cfg.views if strategy == "feature-extract" else 0)
        train_src, test_src = feats["train_src"], feats["test_src"]
    else:
        train_src, test_src = readable_split(cfg, train_src, test_src)
    warn_missing_classes(test_src.labels, classes, "test")
    if strategy == "auto":
        d = decide(feats["Xtr_all"], train_src.labels, len(classes), n_stages=len(backbone.stages) - 1, seed=cfg.seed,
                   large_per_class=cfg.large_per_class, similar_threshold=cfg.similar_threshold)
        log(d.explain())
        decision = d.to_dict()
        strategy, unfreeze = d.strategy, d.unfreeze
        augment = augment or d.augment
        if strategy == "feature-extract" and cfg.views:
            feats = extract(cfg, backbone, train_src, test_src, device, log, views=cfg.views, already_split=True)
    if strategy == "feature-extract":
        return run_feature_extract(cfg, backbone, train_src, test_src, feats, decision, log, t0, listeners)
    if decision is not None:  # auto chose fine-tuning: probe first, cost printed, the better kept (lpft.py)
        return probe_then_fine_tune(cfg, backbone, train_src, test_src, feats, unfreeze, augment or "crop-flip", decision,
                                    log, listeners)
    return run_fine_tune(cfg, backbone, train_src, test_src, unfreeze, augment or "crop-flip", decision, log, feats, listeners)
