"""``transfer()``: one function behind ``convlens transfer``.

feature-extract: backbone features once per image (cached) -> head trained on the cache for
``epochs`` epochs, every epoch's model (backbone + head) saved as ``epoch=NNN.ckpt`` and
evaluated on val and test; the best epoch is chosen on validation, never on test.
fine-tune: the last ``unfreeze`` stages (or everything from ``unfreeze_from``) + head, trained
through the shared engine with the pretrained layers at ``backbone_lr_ratio`` x lr and the
frozen BatchNorm layers in eval mode.
auto: measure (size, similarity) on the cached features, then one of the two above.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from ..errors import ConvlensError
from .backbones import DEFAULT_BACKBONE, Backbone, freeze_except, load_backbone, resolve_unfreeze, set_frozen_bn_eval
from .sources import Source, engine_val_split, folder_sources, holdout_test, named_sources, seeded_limit

STRATEGIES = ("feature-extract", "fine-tune", "auto")
HEADS = ("linear", "logreg")


@dataclass
class TransferConfig:
    """Everything that decides a transfer run. Defaults: the chapter's loop (13 epochs,
    batch 32, Adam 1e-3) on EfficientNet-Lite0, done right."""

    data: str = "../shared/data/catanddog"
    backbone: str = DEFAULT_BACKBONE
    weights: str | None = None
    image_size: int | None = None   # run the backbone at this size instead of its weights' (e.g. 96 for 28-px data)
    strategy: str = "feature-extract"
    head: str = "linear"
    views: int = 0                  # augmented views per training image (feature-extract)
    unfreeze: int | None = None     # fine-tune: last N stages (-1 = all)
    unfreeze_from: str | None = None
    backbone_lr_ratio: float = 0.1  # pretrained layers learn at ratio x lr
    epochs: int = 13
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    augment: str | None = None      # fine-tune batch augmentation (default crop-flip)
    head_init: str = "probe"        # fine-tune: start from a head fitted on cached features (LP-FT) or "random"
    train_bn: bool = False          # fine-tune: let BatchNorm layers of unfrozen stages learn (batch statistics)
    seed: int = 0
    device: str = "auto"
    out: str = "runs"
    name: str | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.2      # held out when the folder has no test split
    limit_train: int | None = None
    limit_test: int | None = None
    data_dir: str | None = None
    cache_dir: str | None = "default"
    strict: bool = False
    progress: bool = True
    large_per_class: int = 1000
    similar_threshold: float = 0.90

    def __post_init__(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ConvlensError(msg)

        need(self.strategy in STRATEGIES, f"--strategy {self.strategy!r}: choose one of {', '.join(STRATEGIES)}")
        need(self.head in HEADS, f"--head {self.head!r}: choose one of {', '.join(HEADS)}")
        need(self.epochs >= 1, f"--epochs {self.epochs}: must be at least 1")
        need(self.batch_size >= 1, f"--batch-size {self.batch_size}: must be at least 1")
        need(self.lr > 0, f"--lr {self.lr}: must be positive")
        need(self.views >= 0, f"--views {self.views}: must be 0 or more")
        need(0 < self.backbone_lr_ratio <= 1, f"--backbone-lr-ratio {self.backbone_lr_ratio}: must be in (0, 1]")
        need(0 <= self.val_fraction < 1, f"--val-fraction {self.val_fraction}: must be in [0, 1)")
        need(0 < self.test_fraction < 1, f"--test-fraction {self.test_fraction}: must be in (0, 1)")
        need(not (self.unfreeze is not None and self.unfreeze_from), "--unfreeze and --unfreeze-from: give one of them")
        need(self.head_init in ("probe", "random"), f"--head-init {self.head_init!r}: choose probe or random")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TransferConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class TransferResult:
    run: Any
    history: list[dict[str, Any]]
    test_acc: float
    best_epoch: int
    summary: dict[str, Any]
    decision: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    model_: nn.Module | None = field(default=None, repr=False)

    @property
    def model(self) -> nn.Module:
        """The run's best model (backbone + head, eval mode); read from the run folder on first
        use, so a feature-extraction run from cached features never builds the network."""
        if self.model_ is None:
            from ..engine.checkpoint import load_run_model

            self.model_, _ = load_run_model(self.run.path, "best")
        return self.model_

    def __repr__(self) -> str:
        return f"TransferResult(run={str(self.run.path)!r}, test_acc={self.test_acc:.4f}, best_epoch={self.best_epoch})"


# ---- data -----------------------------------------------------------------------------------
def _load_sources(cfg: TransferConfig, log: Callable[[str], None]) -> tuple[Source, Source | None]:
    from ..data.registry import list_datasets

    key = cfg.data.lower().replace("_", "-")
    if key in list_datasets() or key in ("fashionmnist", "fmnist"):
        train, test = named_sources(cfg.data, cfg.data_dir)
        return train, test
    train, test, warns = folder_sources(cfg.data, cfg.test_fraction)
    for w in warns:
        log(f"warning: {w}")
    return train, test


def _engine_view(cfg: TransferConfig) -> dict[str, Any]:
    """The keys the engine's ``prepare_data`` reads, so ``convlens evaluate`` works on the run."""
    return {"data": cfg.data, "seed": cfg.seed, "limit_train": cfg.limit_train, "limit_test": cfg.limit_test,
            "data_dir": cfg.data_dir, "model": cfg.backbone}


def _val_size(n_train: int, fraction: float) -> int:
    return int(round(fraction * n_train)) if fraction > 0 and n_train >= 10 else 0


# ---- the run --------------------------------------------------------------------------------
def transfer(cfg: TransferConfig, resume: str | None = None, log: Callable[[str], None] | None = None,
             epochs: int | None = None) -> TransferResult:
    """Run ``cfg`` and write a complete run folder (see the module docstring).

    ``resume``: continue that fine-tune run from its last complete epoch, with its own recipe
    (``cfg`` is then ignored); ``epochs``: with ``resume``, train up to this many in all.
    """
    import sys

    from .._runtime import seed_everything, select_device, set_threads, tune_allocator

    log = log or (lambda m: print(m, file=sys.stderr))
    t0 = time.perf_counter()
    tune_allocator()
    set_threads()
    if resume is not None:
        return _resume(cfg, resume, log, epochs)
    seed_everything(cfg.seed)
    device = select_device(cfg.device)
    train_src, test_src = _load_sources(cfg, log)
    classes = train_src.classes
    # with a feature cache, a backbone seen before comes as a card: its network is built only if needed
    from .features import resolve_cache_dir

    card_cache = resolve_cache_dir(cfg.cache_dir) if cfg.strategy in ("feature-extract", "auto") else None
    backbone = load_backbone(cfg.backbone, num_classes=len(classes), weights=cfg.weights, image_size=cfg.image_size,
                             cache_dir=card_cache)
    timings: dict[str, float] = {"setup": time.perf_counter() - t0}

    strategy, decision, unfreeze, augment = cfg.strategy, None, cfg.unfreeze, cfg.augment
    needs_features = strategy in ("feature-extract", "auto") or cfg.head_init == "probe"
    feats = _features(cfg, backbone, train_src, test_src, device, log, views=cfg.views if strategy == "feature-extract" else 0) \
        if needs_features else None
    if feats is not None:
        train_src, test_src = feats["train_src"], feats["test_src"]
        timings["features"] = feats["seconds"]
    else:
        train_src, test_src = _readable_split(cfg, train_src, test_src)
    if strategy == "auto":
        from .auto import decide

        d = decide(feats["Xtr_all"], train_src.labels, len(classes), n_stages=len(backbone.stages) - 1, seed=cfg.seed,
                   large_per_class=cfg.large_per_class, similar_threshold=cfg.similar_threshold)
        log(d.explain())
        decision = d.to_dict()
        strategy, unfreeze = d.strategy, d.unfreeze
        augment = augment or d.augment
        if strategy == "feature-extract" and cfg.views:
            feats = _features(cfg, backbone, train_src, test_src, device, log, views=cfg.views, already_split=True)
    if strategy == "feature-extract":
        res = _run_feature_extract(cfg, backbone, train_src, test_src, feats, decision, log)
    elif decision is not None:  # auto chose fine-tuning: probe first, cost printed, the better kept (lpft.py)
        from .lpft import probe_then_fine_tune

        res = probe_then_fine_tune(cfg, backbone, train_src, test_src, feats, unfreeze, augment or "crop-flip", decision, log)
    else:
        res = _run_fine_tune(cfg, backbone, train_src, test_src, unfreeze, augment or "crop-flip", decision, log, feats)
    timings["total"] = time.perf_counter() - t0
    res.timings.update(timings)
    res.summary["total_seconds"] = round(timings["total"], 2)
    res.run.write_summary(res.summary)
    return res


def _readable_split(cfg: TransferConfig, train_src: Source, test_src: Source | None) -> tuple[Source, Source]:
    train_src, _ = _drop_unreadable(train_src, cfg.strict)
    if test_src is None:
        train_src, test_src = holdout_test(train_src, cfg.test_fraction)
    else:
        test_src, _ = _drop_unreadable(test_src, cfg.strict)
    return train_src.subset(seeded_limit(len(train_src), cfg.limit_train, cfg.seed)), \
        test_src.subset(seeded_limit(len(test_src), cfg.limit_test, cfg.seed))


def _drop_unreadable(src: Source, strict: bool) -> tuple[Source, None]:
    """For fine-tuning without features: find unreadable files (cheaply: PIL's header + decode)."""
    if not src.is_files:
        return src, None
    from ..data.folders import open_image
    from ..errors import DataError

    keep, skipped = [], list(src.skipped)
    for i, p in enumerate(src.items):
        try:
            open_image(p)
            keep.append(i)
        except DataError as exc:
            if strict:
                raise DataError(f"{exc} (--strict: fix or remove the file)") from None
            skipped.append(str(exc))
    out = src.subset(keep)
    out.skipped = skipped
    return out, None


def _features(cfg: TransferConfig, backbone: Backbone, train_src: Source, test_src: Source | None, device: torch.device,
              log: Callable[[str], None], views: int, already_split: bool = False) -> dict[str, Any]:
    """Features of every readable image; splits cut afterwards (unreadable files are known then)."""
    from .features import extract_features

    t0 = time.perf_counter()
    if not train_src.is_files and not already_split:
        # in-memory data sets have no unreadable images: limit first, never embed 60,000 images to keep 300
        train_src = train_src.subset(seeded_limit(len(train_src), cfg.limit_train, cfg.seed))
        test_src = test_src.subset(seeded_limit(len(test_src), cfg.limit_test, cfg.seed)) if test_src is not None else None
        already_limited = True
    else:
        already_limited = already_split
    cache = None if cfg.cache_dir is None else cfg.cache_dir
    kw = dict(cache_dir=cache, batch_size=max(cfg.batch_size, 32), device=device, progress=cfg.progress, strict=cfg.strict)
    ftr = extract_features(backbone, train_src.items, views=views, seed=cfg.seed, desc="train features", **kw)
    tr_src = train_src.subset(ftr.index)
    tr_src.skipped = list(train_src.skipped) + ftr.skipped
    Xtr, Vtr = ftr.features, ftr.views
    if test_src is None and not already_split:
        keep, hold = _holdout_idx(tr_src, cfg.test_fraction)
        te_src = tr_src.subset(hold)
        Xte = Xtr[hold]
        tr_src, Xtr, Vtr = tr_src.subset(keep), Xtr[keep], (Vtr[keep] if Vtr is not None else None)
        fte = None
    else:
        fte = extract_features(backbone, test_src.items, views=0, seed=cfg.seed, desc="test features", **kw)
        te_src = test_src.subset(fte.index)
        te_src.skipped = list(test_src.skipped) + fte.skipped
        Xte = fte.features
    if not already_limited:
        lim = seeded_limit(len(tr_src), cfg.limit_train, cfg.seed)
        tr_src, Xtr, Vtr = tr_src.subset(lim), Xtr[lim], (Vtr[lim] if Vtr is not None else None)
        lim_t = seeded_limit(len(te_src), cfg.limit_test, cfg.seed)
        te_src, Xte = te_src.subset(lim_t), Xte[lim_t]
    for s in tr_src.skipped + te_src.skipped:
        log(f"skipped {s}")
    computed = ftr.computed + (fte.computed if fte else 0)
    cached = ftr.cached + (fte.cached if fte else 0)
    secs = time.perf_counter() - t0
    rate = f", {computed / secs:.1f} images/s" if computed else ""
    log(f"features: {computed} image(s) computed, {cached} from the cache, {secs:.1f} s{rate}"
        + (f" (+{views} augmented view(s) per training image)" if views else ""))
    return {"train_src": tr_src, "test_src": te_src, "Xtr_all": Xtr, "Vtr_all": Vtr, "Xte": Xte,
            "computed": computed, "cached": cached, "seconds": secs}


def _holdout_idx(src: Source, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    from ..data.folders import holdout_indices

    return holdout_indices(src.labels, len(src.classes), fraction, seed=0)


BODY_CHECKPOINT = "backbone.ckpt"


def _save_head(path: Path, backbone: Backbone, head_state: dict[str, torch.Tensor], meta: dict[str, Any], epoch: int) -> None:
    """An epoch's checkpoint: the trained classifier only, over the run's one frozen
    ``backbone.ckpt`` (``read_checkpoint`` joins them). 15 full EfficientNet-Lite0 copies (13
    epochs, best, last) made a run folder 200 MB; with 12.6 KB heads it is 16 MB."""
    from ..runs import atomic_torch_save

    # the classifier is one Linear (install_head insists): its keys end in .weight / .bias
    sd = {"model." + k: head_state[k.rsplit(".", 1)[1]].detach().cpu().contiguous() for k in backbone.head_keys}
    atomic_torch_save({"state_dict": sd, "convlens": meta, "epoch": epoch, "base": BODY_CHECKPOINT}, path)


def _run_meta(backbone: Backbone, classes: list[str]) -> dict[str, Any]:
    """The engine's checkpoint meta (``convlens.engine.checkpoint.model_meta``), from the card."""
    return {"model_name": backbone.name, "model_kwargs": {}, "num_classes": len(classes), "classes": list(classes),
            "pretrained_cfg": backbone.pretrained_cfg()}


def _run_feature_extract(cfg: TransferConfig, backbone: Backbone, train_src: Source, test_src: Source, feats: dict[str, Any],
                         decision: dict[str, Any] | None, log: Callable[[str], None]) -> TransferResult:
    import shutil

    from .backbones import body_meta
    from .heads import fit_logreg_head, train_linear_head
    from .report import HeadEvaluation

    t0 = time.perf_counter()
    classes = train_src.classes
    Xall, Vall, Xte = feats["Xtr_all"], feats["Vtr_all"], feats["Xte"]
    val_size = _val_size(len(train_src), cfg.val_fraction)
    tr_idx, va_idx = engine_val_split(train_src.labels, classes, val_size, cfg.seed)
    ytr, yva, yte = train_src.labels[tr_idx], train_src.labels[va_idx], test_src.labels
    run = _create_run(cfg, val_size, "feature-extract", decision)
    meta = _run_meta(backbone, classes)
    ck = run.checkpoints_dir
    ck.mkdir(parents=True, exist_ok=True)
    backbone.save_body(ck / BODY_CHECKPOINT, body_meta(backbone))
    best = {"score": float("inf"), "epoch": 0, "state": None}
    history: list[dict[str, Any]] = []

    def on_epoch(ep: Any) -> None:
        e = ep.epoch + 1  # the engine counts epochs from 1
        row = {**ep.row, "epoch": e}
        history.append(row)
        run.append_metrics(row)
        _save_head(ck / f"epoch={e:03d}.ckpt", backbone, ep.state, meta, e)
        shutil.copyfile(ck / f"epoch={e:03d}.ckpt", ck / ".last.tmp")
        (ck / ".last.tmp").replace(ck / "last.ckpt")
        score = row["val_loss"] if row.get("val_loss") is not None else -e  # no val: best = last
        if score < best["score"]:
            best.update(score=score, epoch=e, state=ep.state)
            shutil.copyfile(ck / f"epoch={e:03d}.ckpt", ck / ".best.tmp")
            (ck / ".best.tmp").replace(ck / "best.ckpt")

    head_info: dict[str, Any] = {}
    if cfg.head == "logreg":
        head, head_info = fit_logreg_head(Xall[tr_idx], ytr, len(classes), seed=cfg.seed)
        from .heads import HeadEpoch, _metrics

        row = {"epoch": 0, **_metrics(head, Xall[tr_idx], ytr, "train"), **_metrics(head, Xall[va_idx], yva, "val"),
               **_metrics(head, Xte, yte, "test"), "seconds": time.perf_counter() - t0}
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
    final = HeadEvaluation(loss, float((preds == yte).float().mean()) if len(yte) else float("nan"), preds, yte.clone(), probs)
    head_seconds = time.perf_counter() - t0
    head_params = sum(p.numel() for p in head.parameters())
    summary = _summary(cfg, "feature-extract", final, history, best["epoch"], train_src, test_src, tr_idx, va_idx,
                       params=backbone.body_params + head_params, trainable=head_params, decision=decision)
    summary.update(features_seconds=round(feats["seconds"], 2), features_computed=feats["computed"],
                   features_cached=feats["cached"], head=cfg.head, head_seconds=round(head_seconds, 2), views=cfg.views,
                   **({"logreg_C": head_info["C"]} if "C" in head_info else {}))
    summary["network_built"] = backbone.built  # False: every feature came from the cache
    run.write_summary(summary)
    _report(run, test_src, backbone, final, history, meta, summary, decision, cfg)
    return TransferResult(run, history, final.acc, best["epoch"], summary, decision, {"head": head_seconds})


def _create_run(cfg: TransferConfig, val_size: int, strategy: str, decision: dict[str, Any] | None):
    """A run folder in the engine's layout (``kind`` = ``transfer``)."""
    from ..runs import RunDir, default_run_name

    dataset = Path(cfg.data).name if Path(cfg.data).is_dir() else cfg.data
    path = Path(cfg.out) / (cfg.name or default_run_name(f"transfer-{cfg.backbone}-{dataset}".replace("/", "_")))
    if list((path / "checkpoints").glob("epoch=*.ckpt")):
        raise ConvlensError(f"{path} already holds a run: choose another --name (or --resume {path} for a fine-tune run)")
    config = {**cfg.to_dict(), **_engine_view(cfg), "val_size": val_size, "strategy_used": strategy, "auto": decision}
    return RunDir.create(path, config, kind="transfer")


def _summary(cfg: TransferConfig, strategy: str, final: Any, history: list[dict[str, Any]], best_epoch: int, train_src: Source,
             test_src: Source, tr_idx: torch.Tensor, va_idx: torch.Tensor, params: int, trainable: int,
             decision: dict[str, Any] | None) -> dict[str, Any]:
    s: dict[str, Any] = {
        "test_acc": final.acc, "test_loss": final.loss, "strategy": strategy, "backbone": cfg.backbone,
        "best_epoch": best_epoch, "best_by": "val_loss" if len(va_idx) else "last epoch (no validation split)",
        "epochs": len(history), "train_images": len(tr_idx), "val_images": len(va_idx), "test_images": len(test_src),
        "params": params, "trainable_params": trainable,
        "skipped_files": train_src.skipped + test_src.skipped,
    }
    if history:
        s["test_acc_last_epoch"] = history[-1].get("test_acc")
    if decision:
        s["auto"] = decision
    return s


def _report(run: Any, test_src: Source, backbone: Backbone, final: Any, history: list[dict[str, Any]],
            meta: dict[str, Any], summary: dict[str, Any], decision: dict[str, Any] | None, cfg: TransferConfig) -> None:
    from .report import write_report
    from .sources import LazyTestImages

    notes = [f"strategy: {summary['strategy']}; backbone {backbone.name} ({backbone.weights_id}); preprocessing "
             f"{backbone.preprocess.key()}, mean {backbone.mean}, std {backbone.std} (from the weights' own config)",
             f"features: {summary.get('features_computed', 0)} computed, {summary.get('features_cached', 0)} from the cache; "
             f"the head trained {summary.get('epochs')} epoch(s) on them in {summary.get('head_seconds')} s"]
    if decision:
        from .auto import AutoDecision

        notes.append(AutoDecision(**decision).explain())
    write_report(run, LazyTestImages(test_src, backbone.preprocess), final, history, meta["classes"], summary,
                 title=f"transfer: {backbone.name} on {Path(cfg.data).name}", notes=notes)


# ---- fine-tuning ----------------------------------------------------------------------------
def param_groups_fn(trainable_head: list[str], ratio: float) -> Callable[[nn.Module, float], list[dict[str, Any]]]:
    """Head at lr, every other trainable (pretrained) parameter at ``ratio`` x lr."""
    head = set(trainable_head)

    def groups(model: nn.Module, lr: float) -> list[dict[str, Any]]:
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        return [{"params": [p for n, p in named if n in head], "lr": lr, "name": "head"},
                {"params": [p for n, p in named if n not in head], "lr": lr * ratio, "name": "pretrained"}]

    return groups


def prepare_fine_tune(backbone: Backbone, unfreeze: int | None, unfreeze_from: str | None, train_bn: bool = False) -> dict[str, Any]:
    """Freeze all but the head and the chosen stages; frozen BatchNorm layers go to eval mode.

    ``train_bn=False`` (default) keeps *every* BatchNorm layer frozen, in the unfrozen stages
    too (Keras' advice for fine-tuning): with a few hundred images in batches of 32, batch
    statistics of a new domain (Fashion-MNIST upscaled to 224) differ wildly from ImageNet's
    running ones, and the features shift under the head the moment training starts.
    """
    from .backbones import head_parameter_names

    model = backbone.model
    trainable = resolve_unfreeze(model, backbone.stages, unfreeze if unfreeze is not None or unfreeze_from else 2, unfreeze_from)
    if not train_bn:
        bn_params = {f"{name}.{p}" for name, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                     for p, _ in m.named_parameters(recurse=False)}
        trainable = [n for n in trainable if n not in bn_params]
    n_train, total = freeze_except(model, trainable)
    model.train()
    n_bn = set_frozen_bn_eval(model)
    return {"trainable": trainable, "trainable_params": n_train, "total_params": total, "frozen_bn": n_bn,
            "head": head_parameter_names(model)}


def probe_init(backbone: Backbone, feats: dict[str, Any], train_src: Source, cfg: TransferConfig, val_size: int) -> dict[str, Any]:
    """LP-FT (Kumar et al., ICLR 2022): fit the head on the cached frozen features first, so
    fine-tuning starts from a good classifier instead of pushing random-head gradients into
    the pretrained layers. Costs seconds once the features are cached."""
    from .heads import fit_logreg_head, install_head

    tr_idx, va_idx = engine_val_split(train_src.labels, train_src.classes, val_size, cfg.seed)
    X, y = feats["Xtr_all"], train_src.labels
    head, info = fit_logreg_head(X[tr_idx], y[tr_idx], len(train_src.classes), seed=cfg.seed)
    install_head(backbone.model, head)
    with torch.no_grad():
        val_acc = float((head(X[va_idx]).argmax(1) == y[va_idx]).float().mean()) if len(va_idx) else None
        train_acc = float((head(X[tr_idx]).argmax(1) == y[tr_idx]).float().mean())
    return {"probe_val_acc": val_acc, "probe_train_acc": train_acc, "probe_C": info["C"]}


def _run_fine_tune(cfg: TransferConfig, backbone: Backbone, train_src: Source, test_src: Source, unfreeze: int | None,
                   augment: str, decision: dict[str, Any] | None, log: Callable[[str], None],
                   feats: dict[str, Any] | None = None) -> TransferResult:
    from ..data.registry import DatasetSplits
    from ..engine import TrainConfig, train

    init: dict[str, Any] = {}
    if cfg.head_init == "probe" and feats is not None:
        init = probe_init(backbone, feats, train_src, cfg, _val_size(len(train_src), cfg.val_fraction))
        log(f"fine-tune: head initialised by a linear probe on the cached features (val accuracy {init['probe_val_acc']})")
    info = prepare_fine_tune(backbone, unfreeze, cfg.unfreeze_from, cfg.train_bn)
    stages = [s for s, ps in backbone.stages if set(ps) & set(info["trainable"])]
    log(f"fine-tune: training {info['trainable_params']:,} of {info['total_params']:,} parameters (stages {', '.join(stages)}); "
        f"pretrained layers at lr x {cfg.backbone_lr_ratio}; {info['frozen_bn']} frozen BatchNorm layers kept in eval mode")
    pp = backbone.preprocess
    data = DatasetSplits(train_src.to_tensors(pp, cfg.progress), test_src.to_tensors(pp, cfg.progress), Path(cfg.data).name)
    val_size = _val_size(len(train_src), cfg.val_fraction)
    dataset = Path(cfg.data).name if Path(cfg.data).is_dir() else cfg.data
    tcfg = TrainConfig(data=cfg.data, model=backbone.name, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                       optimizer=cfg.optimizer, weight_decay=cfg.weight_decay, augment=augment, seed=cfg.seed, device=cfg.device,
                       out=cfg.out, name=cfg.name or _default_name(cfg, dataset), val_size=val_size, eval_batch_size=64,
                       data_dir=cfg.data_dir, progress=cfg.progress, pretrained=True)
    extra = {"transfer": cfg.to_dict(), "strategy_used": "fine-tune", "unfreeze_used": unfreeze, "auto": decision,
             "trainable_stages": stages}
    res = train(tcfg, model=backbone.model, data=data, param_groups=param_groups_fn(info["head"], cfg.backbone_lr_ratio),
                kind="transfer", extra_config=extra)
    summary = res.run.summary()
    summary.update(strategy="fine-tune", backbone=cfg.backbone, unfreeze=unfreeze, unfreeze_from=cfg.unfreeze_from,
                   trainable_stages=stages, backbone_lr_ratio=cfg.backbone_lr_ratio, frozen_bn=info["frozen_bn"],
                   augment=augment, head_init=cfg.head_init, train_bn=cfg.train_bn, skipped_files=train_src.skipped + test_src.skipped,
                   **init, **({"auto": decision} if decision else {}))
    res.run.write_summary(summary)
    return TransferResult(res.run, res.history, res.test_acc, res.best_epoch, summary, decision, model_=res.model)


def _default_name(cfg: TransferConfig, dataset: str) -> str:
    from ..runs import default_run_name

    return default_run_name(f"transfer-{cfg.backbone}-{dataset}".replace("/", "_"))


def _resume(cfg: TransferConfig, resume: str, log: Callable[[str], None], epochs: int | None) -> TransferResult:
    """Continue a fine-tune run (feature-extract runs are re-run: the cache makes it seconds)."""
    from ..engine import TrainConfig, train
    from ..runs import RunDir

    run = RunDir.open(resume)
    rec = run.config
    if rec.get("strategy_used") != "fine-tune":
        raise ConvlensError(f"--resume {resume}: only fine-tune runs resume; a feature-extract run reruns in seconds from the cache")
    tcfg_saved = TrainConfig.from_dict(rec)
    tc = TransferConfig.from_dict(rec["transfer"])
    backbone = load_backbone(tc.backbone, weights=tc.weights, num_classes=None, image_size=tc.image_size)
    train_src, test_src = _load_sources(tc, log)
    backbone.model.reset_classifier(len(train_src.classes))
    train_src, test_src = _readable_split(tc, train_src, test_src)
    info = prepare_fine_tune(backbone, rec.get("unfreeze_used"), tc.unfreeze_from, tc.train_bn)
    from ..data.registry import DatasetSplits

    pp = backbone.preprocess
    data = DatasetSplits(train_src.to_tensors(pp, cfg.progress), test_src.to_tensors(pp, cfg.progress), Path(tc.data).name)
    tcfg_saved.progress, tcfg_saved.device = cfg.progress, cfg.device
    before = run.summary() if (run.path / RunDir.SUMMARY).is_file() else {}
    res = train(tcfg_saved, model=backbone.model, data=data, param_groups=param_groups_fn(info["head"], tc.backbone_lr_ratio),
                kind="transfer", resume=resume, epochs=epochs)
    summary = res.run.summary()
    summary = {**{k: v for k, v in before.items() if k not in summary}, **summary}  # keep the fine-tune facts (strategy, stages...)
    res.run.write_summary(summary)
    return TransferResult(res.run, res.history, res.test_acc, res.best_epoch, summary, rec.get("auto"), model_=res.model)


__all__ = ["TransferConfig", "TransferResult", "param_groups_fn", "prepare_fine_tune", "transfer"]
