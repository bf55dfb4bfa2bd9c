"""What decides a transfer run (:class:`TransferConfig`) and where its run folder goes."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import ConvlensError
from ..runs import RunDir, RunResult, default_run_name
from .backbones import DEFAULT_BACKBONE

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


TransferResult = RunResult  # the name before every verb returned one RunResult


def val_size(n_train: int, fraction: float) -> int:
    """Images held out of train to pick the epoch: ``round(fraction * n)`` (none below 10 images)."""
    return int(round(fraction * n_train)) if fraction > 0 and n_train >= 10 else 0


def dataset_name(cfg: TransferConfig) -> str:
    return Path(cfg.data).name if Path(cfg.data).is_dir() else cfg.data


def default_name(cfg: TransferConfig) -> str:
    return default_run_name(f"transfer-{cfg.backbone}-{dataset_name(cfg)}".replace("/", "_"))


def engine_view(cfg: TransferConfig) -> dict[str, Any]:
    """The keys the data preparation reads (:func:`convlens.data.prepare.prepare_data`), so
    ``convlens evaluate`` and ``explain`` rebuild the run's splits."""
    return {"data": cfg.data, "seed": cfg.seed, "limit_train": cfg.limit_train, "limit_test": cfg.limit_test,
            "data_dir": cfg.data_dir, "model": cfg.backbone}


def create_run(cfg: TransferConfig, n_val: int, strategy: str, decision: dict[str, Any] | None) -> RunDir:
    """A run folder in the engine's layout (``kind`` = ``transfer``)."""
    path = Path(cfg.out) / (cfg.name or default_name(cfg))
    if list((path / "checkpoints").glob("epoch=*.ckpt")):
        raise ConvlensError(f"{path} already holds a run: choose another --name (or --resume {path} for a fine-tune run)")
    config = {**cfg.to_dict(), **engine_view(cfg), "val_size": n_val, "strategy_used": strategy, "auto": decision}
    return RunDir.create(path, config, kind="transfer")
