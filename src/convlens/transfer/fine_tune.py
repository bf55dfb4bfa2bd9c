"""Fine-tuning on the engine: the last stages (or everything from a named layer) and the head
learn through :func:`convlens.engine.train` (docs/transfer.md, "Fine-tuning").
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

import torch.nn as nn

from ..data.folders import log_skipped, open_image, skipped_once
from ..data.prepare import seeded_limit, stratified_split
from ..engine.config import TrainConfig
from ..errors import ConvlensError, DataError
from ..runs import RunDir, RunResult
from .auto import decision_notes
from .backbones import Backbone, freeze_except, head_parameter_names, load_backbone, resolve_unfreeze
from .config import TransferConfig, default_name, val_size
from .heads import fit_logreg_head, head_metrics, install_head
from .sources import Source


def readable_split(cfg: TransferConfig, train_src: Source, test_src: Source | None) -> tuple[Source, Source]:
    train_src = _drop_unreadable(train_src, cfg.strict)
    if test_src is None:
        keep, hold = train_src.test_holdout(cfg.test_fraction)
        train_src, test_src = train_src.subset(keep), train_src.subset(hold)
    else:
        test_src = _drop_unreadable(test_src, cfg.strict)
    return train_src.subset(seeded_limit(len(train_src), cfg.limit_train, cfg.seed)), \
        test_src.subset(seeded_limit(len(test_src), cfg.limit_test, cfg.seed))


def _drop_unreadable(src: Source, strict: bool) -> Source:
    """For fine-tuning without features: find unreadable files (cheaply: PIL's header + decode)."""
    if not src.is_files:
        return src
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
    return out


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

    ``train_bn=False`` (default) keeps *every* BatchNorm layer frozen, in the unfrozen stages too:
    a new domain's batch statistics shift the features under the head (measured in docs/transfer.md).
    """
    model = backbone.model
    trainable = resolve_unfreeze(model, backbone.stages, unfreeze if unfreeze is not None or unfreeze_from else 2, unfreeze_from)
    if not train_bn:
        bn_params = {f"{name}.{p}" for name, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                     for p, _ in m.named_parameters(recurse=False)}
        trainable = [n for n in trainable if n not in bn_params]
    n_train, total = freeze_except(model, trainable)
    model.train()
    from ..engine.module import freeze_bn_of_frozen_layers

    n_bn = freeze_bn_of_frozen_layers(model)
    return {"trainable": trainable, "trainable_params": n_train, "total_params": total, "frozen_bn": n_bn,
            "head": head_parameter_names(model)}


def probe_init(backbone: Backbone, feats: dict[str, Any], train_src: Source, cfg: TransferConfig, n_val: int) -> dict[str, Any]:
    """LP-FT (Kumar et al., ICLR 2022): the head fitted on the cached frozen features first (docs/transfer.md)."""
    tr_idx, va_idx = stratified_split(train_src.labels, len(train_src.classes), n_val, cfg.seed)
    X, y = feats["Xtr_all"], train_src.labels
    head, info = fit_logreg_head(X[tr_idx], y[tr_idx], len(train_src.classes), seed=cfg.seed)
    install_head(backbone.model, head)
    return {"probe_val_acc": head_metrics(head, X[va_idx], y[va_idx], "val")["val_acc"],
            "probe_train_acc": head_metrics(head, X[tr_idx], y[tr_idx], "train")["train_acc"], "probe_C": info["C"]}


def _train(tcfg: Any, tc: TransferConfig, backbone: Backbone, train_src: Source, test_src: Source, info: dict[str, Any],
           facts: dict[str, Any], decision: dict[str, Any] | None, progress: bool, **kw: Any) -> RunResult:
    """The engine's :func:`~convlens.engine.train` on the decoded images, pretrained layers at
    ``backbone_lr_ratio`` x lr, the fine-tune ``facts`` in the summary and the report."""
    from ..data.registry import DatasetSplits
    from ..engine import train

    pp, name = backbone.preprocess, Path(tc.data).name
    data = DatasetSplits(train_src.to_tensors(pp, progress), test_src.to_tensors(pp, progress), name)
    note = (f"strategy: fine-tune of stages {', '.join(facts.get('trainable_stages') or [])}; backbone {backbone.name}; "
            f"pretrained layers at lr x {facts.get('backbone_lr_ratio')}; {facts.get('frozen_bn')} frozen BatchNorm layers "
            f"in eval mode; head start: {facts.get('head_init')}"
            + (f" (linear-probe val accuracy {facts['probe_val_acc']})" if facts.get("probe_val_acc") is not None else ""))
    return train(tcfg, model=backbone.model, data=data, param_groups=param_groups_fn(info["head"], tc.backbone_lr_ratio),
                 kind="transfer", summary_extra=facts, notes=[note] + decision_notes(decision),
                 title=f"transfer: {backbone.name} on {name}", **kw)


# facts a fine-tune run adds to the engine's summary (kept when the run resumes)
FACTS = ("strategy", "backbone", "unfreeze", "unfreeze_from", "trainable_stages", "backbone_lr_ratio", "frozen_bn", "augment",
         "head_init", "train_bn", "skipped_files", "probe_val_acc", "probe_train_acc", "probe_C", "auto")


def run_fine_tune(cfg: TransferConfig, backbone: Backbone, train_src: Source, test_src: Source, unfreeze: int | None,
                  augment: str, decision: dict[str, Any] | None, log: Callable[[str], None],
                  feats: dict[str, Any] | None = None, listeners: Iterable[Any] = ()) -> RunResult:
    n_val = val_size(len(train_src), cfg.val_fraction)
    init: dict[str, Any] = {}
    if cfg.head_init == "probe" and feats is not None:
        init = probe_init(backbone, feats, train_src, cfg, n_val)
        log(f"fine-tune: head initialised by a linear probe on the cached features (val accuracy {init['probe_val_acc']})")
    if feats is None:  # (feature extraction, when it ran first, has named them)
        limited = cfg.limit_train or cfg.limit_test  # then the images read are not all there are
        log_skipped(skipped_once(train_src.skipped, test_src.skipped), cfg.data, log,
                    read=None if limited else len(train_src) + len(test_src))
    info = prepare_fine_tune(backbone, unfreeze, cfg.unfreeze_from, cfg.train_bn)
    stages = [s for s, ps in backbone.stages if set(ps) & set(info["trainable"])]
    log(f"fine-tune: training {info['trainable_params']:,} of {info['total_params']:,} parameters (stages {', '.join(stages)}); "
        f"pretrained layers at lr x {cfg.backbone_lr_ratio}; {info['frozen_bn']} frozen BatchNorm layers kept in eval mode")
    tcfg = TrainConfig(data=cfg.data, model=backbone.name, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                       optimizer=cfg.optimizer, weight_decay=cfg.weight_decay, augment=augment, seed=cfg.seed, device=cfg.device,
                       out=cfg.out, name=cfg.name or default_name(cfg), val_size=n_val, eval_batch_size=64,
                       data_dir=cfg.data_dir, progress=cfg.progress, pretrained=True)
    extra = {"transfer": cfg.to_dict(), "strategy_used": "fine-tune", "unfreeze_used": unfreeze, "auto": decision,
             "trainable_stages": stages}
    facts = dict(strategy="fine-tune", backbone=cfg.backbone, unfreeze=unfreeze, unfreeze_from=cfg.unfreeze_from,
                 trainable_stages=stages, backbone_lr_ratio=cfg.backbone_lr_ratio, frozen_bn=info["frozen_bn"],
                 augment=augment, head_init=cfg.head_init, train_bn=cfg.train_bn,
                 skipped_files=skipped_once(train_src.skipped, test_src.skipped), **init, **({"auto": decision} if decision else {}))
    return _train(tcfg, cfg, backbone, train_src, test_src, info, facts, decision, cfg.progress, extra_config=extra,
                  listeners=listeners)


def resume(cfg: TransferConfig, run_path: str, load_sources: Callable[..., Any], log: Callable[[str], None],
           epochs: int | None, listeners: Iterable[Any] = ()) -> RunResult:
    """Continue a fine-tune run (feature-extract runs are re-run: the cache makes it seconds)."""
    run = RunDir.open(run_path)
    rec = run.config
    if rec.get("strategy_used") != "fine-tune":
        raise ConvlensError(f"--resume {run_path}: only fine-tune runs resume; a feature-extract run reruns in seconds from the cache")
    tcfg_saved = TrainConfig.from_dict(rec)
    tc = TransferConfig.from_dict(rec["transfer"])
    backbone = load_backbone(tc.backbone, weights=tc.weights, num_classes=None, image_size=tc.image_size)
    train_src, test_src = load_sources(tc, log)
    backbone.model.reset_classifier(len(train_src.classes))
    train_src, test_src = readable_split(tc, train_src, test_src)
    info = prepare_fine_tune(backbone, rec.get("unfreeze_used"), tc.unfreeze_from, tc.train_bn)
    tcfg_saved.progress, tcfg_saved.device = cfg.progress, cfg.device
    facts = {k: v for k, v in run.summary().items() if k in FACTS}
    return _train(tcfg_saved, tc, backbone, train_src, test_src, info, facts, rec.get("auto"), cfg.progress, resume=run_path,
                  epochs=epochs, listeners=listeners)
