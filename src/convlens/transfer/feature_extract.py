"""Feature extraction: the frozen backbone's features once per image (cached), then a head
trained on them. Every epoch's model is recorded as ``epoch=NNN.ckpt``: the head alone over the
run's one frozen ``backbone.ckpt`` (``read_checkpoint`` joins them), so 13 epochs of
EfficientNet-Lite0 take 16 MB instead of 200 MB. No Lightning: with a warm cache a run takes
seconds, and importing Lightning alone costs several.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
import torch.nn as nn

from ..data.folders import log_skipped, skipped_once
from ..data.prepare import seeded_limit, stratified_split
from ..engine.checkpoint import checkpoint_meta
from ..engine.evaluate import Evaluation
from ..runs import RunRecorder, RunResult
from .auto import decision_notes
from .backbones import Backbone, body_meta
from .config import TransferConfig, create_run, val_size
from .heads import HeadEpoch, fit_logreg_head, head_metrics, train_linear_head
from .sources import LazyTestImages, Source

BODY_CHECKPOINT = "backbone.ckpt"


def extract(cfg: TransferConfig, backbone: Backbone, train_src: Source, test_src: Source | None, device: torch.device,
            log: Callable[[str], None], views: int, already_split: bool = False) -> dict[str, Any]:
    """Features of every readable image; splits cut afterwards (unreadable files are known then)."""
    from .features import extract_features

    t0 = time.perf_counter()
    limit_first = not train_src.is_files and not already_split
    if limit_first:
        # in-memory data sets have no unreadable images: limit first, never embed 60,000 images to keep 300
        train_src = train_src.subset(seeded_limit(len(train_src), cfg.limit_train, cfg.seed))
        test_src = test_src.subset(seeded_limit(len(test_src), cfg.limit_test, cfg.seed)) if test_src is not None else None
    kw = dict(cache_dir=cfg.cache_dir, batch_size=max(cfg.batch_size, 32), device=device, progress=cfg.progress, strict=cfg.strict)
    ftr = extract_features(backbone, train_src.items, views=views, seed=cfg.seed, desc="train features", **kw)
    tr_src = train_src.subset(ftr.index)
    tr_src.skipped += ftr.skipped
    keep = torch.arange(len(tr_src))  # the rows of tr_src that stay in the training split, cut below
    if test_src is None and not already_split:
        keep, hold = tr_src.test_holdout(cfg.test_fraction)
        te_src, Xte, fte = tr_src.subset(hold), ftr.features[hold], None
    else:
        fte = extract_features(backbone, test_src.items, views=0, seed=cfg.seed, desc="test features", **kw)
        te_src, Xte = test_src.subset(fte.index), fte.features
        te_src.skipped += fte.skipped
    if not (limit_first or already_split):
        keep = keep[seeded_limit(len(keep), cfg.limit_train, cfg.seed)]
        lim_t = seeded_limit(len(te_src), cfg.limit_test, cfg.seed)
        te_src, Xte = te_src.subset(lim_t), Xte[lim_t]
    tr_src, Xtr, Vtr = tr_src.subset(keep), ftr.features[keep], (ftr.views[keep] if ftr.views is not None else None)
    readable = len(ftr.index) + (len(fte.index) if fte else 0)  # before --limit-train/--limit-test
    log_skipped(skipped_once(tr_src.skipped, te_src.skipped), cfg.data, log, read=readable)
    computed = ftr.computed + (fte.computed if fte else 0)
    cached = ftr.cached + (fte.cached if fte else 0)
    secs = time.perf_counter() - t0
    rate = f", {computed / secs:.1f} images/s" if computed else ""
    log(f"features: {computed} image(s) computed, {cached} from the cache, {secs:.1f} s{rate}"
        + (f" (+{views} augmented view(s) per training image)" if views else ""))
    return {"train_src": tr_src, "test_src": te_src, "Xtr_all": Xtr, "Vtr_all": Vtr, "Xte": Xte,
            "computed": computed, "cached": cached, "seconds": secs}


def head_checkpoint(backbone: Backbone, head_state: dict[str, torch.Tensor], meta: dict[str, Any], epoch: int) -> dict[str, Any]:
    """An epoch's checkpoint: the trained classifier only, over the run's frozen ``backbone.ckpt``."""
    # the classifier is one Linear (install_head insists): its keys end in .weight / .bias
    sd = {"model." + k: head_state[k.rsplit(".", 1)[1]].detach().cpu().contiguous() for k in backbone.head_keys}
    return {"state_dict": sd, "convlens": meta, "epoch": epoch, "base": BODY_CHECKPOINT}


def run_feature_extract(cfg: TransferConfig, backbone: Backbone, train_src: Source, test_src: Source, feats: dict[str, Any],
                        decision: dict[str, Any] | None, log: Callable[[str], None], t0: float,
                        listeners: Iterable[Any] = ()) -> RunResult:
    from ..engine.report import write_run_report  # matplotlib: only once a run reports

    th = time.perf_counter()
    classes = train_src.classes
    Xall, Vall, Xte = feats["Xtr_all"], feats["Vtr_all"], feats["Xte"]
    n_val = val_size(len(train_src), cfg.val_fraction)
    tr_idx, va_idx = stratified_split(train_src.labels, len(classes), n_val, cfg.seed)
    ytr, yva, yte = train_src.labels[tr_idx], train_src.labels[va_idx], test_src.labels
    run = create_run(cfg, n_val, "feature-extract", decision)
    # lowest validation loss: a head's accuracy on a few hundred images moves in steps of 1/n and ties often
    recorder = RunRecorder(run, "val_loss" if len(va_idx) else "last", listeners)
    recorder.start(1 if cfg.head == "logreg" else cfg.epochs, f"{cfg.head} head on {backbone.name} features")
    meta = checkpoint_meta(backbone.name, classes, {}, backbone.pretrained_cfg())
    run.checkpoints_dir.mkdir(parents=True, exist_ok=True)
    backbone.save_body(run.checkpoints_dir / BODY_CHECKPOINT, body_meta(backbone))
    best: dict[str, Any] = {}

    def on_epoch(ep: HeadEpoch) -> None:
        e = ep.epoch + 1  # run folders count epochs from 1
        recorder.epoch_start(e)
        if recorder.end_epoch({**ep.row, "epoch": e}, head_checkpoint(backbone, ep.state, meta, e)) or not best:
            best["state"] = ep.state

    head_info: dict[str, Any] = {}
    if cfg.head == "logreg":
        head, head_info = fit_logreg_head(Xall[tr_idx], ytr, len(classes), seed=cfg.seed)
        row = {"epoch": 0, **head_metrics(head, Xall[tr_idx], ytr, "train"), **head_metrics(head, Xall[va_idx], yva, "val"),
               **head_metrics(head, Xte, yte, "test"), "seconds": time.perf_counter() - th}
        on_epoch(HeadEpoch(0, {k: v.detach().clone() for k, v in head.state_dict().items()}, row))
    else:
        train_linear_head(Xall[tr_idx], ytr, len(classes), views=Vall[tr_idx] if Vall is not None else None,
                          X_val=Xall[va_idx], y_val=yva, X_test=Xte, y_test=yte, epochs=cfg.epochs, batch_size=cfg.batch_size,
                          lr=cfg.lr, optimizer=cfg.optimizer, weight_decay=cfg.weight_decay, seed=cfg.seed, on_epoch=on_epoch)
    # the best epoch's model, evaluated on the cached test features
    head = nn.Linear(Xte.shape[1] if len(Xte) else Xall.shape[1], len(classes))
    head.load_state_dict(best["state"])
    with torch.no_grad():
        logits = head(Xte) if len(Xte) else torch.zeros(0, len(classes))
        probs = logits.softmax(1)
        loss = float(nn.functional.cross_entropy(logits, yte)) if len(Xte) else float("nan")
    preds = probs.argmax(1)
    final = Evaluation(loss, float((preds == yte).float().mean()) if len(yte) else float("nan"), preds, yte.clone(), probs)
    history = run.metrics()
    head_params = sum(p.numel() for p in head.parameters())
    summary: dict[str, Any] = {
        "test_acc": final.acc, "test_loss": final.loss, "strategy": "feature-extract", "backbone": cfg.backbone,
        "epochs": len(history), "train_images": len(tr_idx), "val_images": len(va_idx), "test_images": len(test_src),
        "params": backbone.body_params + head_params, "trainable_params": head_params,
        "skipped_files": skipped_once(train_src.skipped, test_src.skipped), "test_acc_last_epoch": history[-1].get("test_acc"),
        **({"auto": decision} if decision else {}),
        "features_seconds": round(feats["seconds"], 2), "features_computed": feats["computed"],
        "features_cached": feats["cached"], "head": cfg.head, "head_seconds": round(time.perf_counter() - th, 2),
        "views": cfg.views, **({"logreg_C": head_info["C"]} if "C" in head_info else {}),
        "network_built": backbone.built,  # False: every feature came from the cache
        "total_seconds": round(time.perf_counter() - t0, 2)}
    notes = [f"strategy: feature-extract; backbone {backbone.name} ({backbone.weights_id}); preprocessing "
             f"{backbone.preprocess.key()}, mean {backbone.mean}, std {backbone.std} (from the weights' own config)",
             f"features: {feats['computed']} computed, {feats['cached']} from the cache; "
             f"the head trained {len(history)} epoch(s) on them in {summary['head_seconds']} s"] + decision_notes(decision)
    return recorder.finish(summary, lambda s: write_run_report(
        run, LazyTestImages(test_src, backbone.preprocess), final, history, classes, s,
        title=f"transfer: {backbone.name} on {Path(cfg.data).name}", notes=notes))
