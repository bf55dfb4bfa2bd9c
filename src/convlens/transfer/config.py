"""What decides a transfer run (:class:`TransferConfig`) and where its run folder goes."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from ..argtypes import output_dir
from ..engine.config import AUGMENTS
from ..engine.optim import OPTIMIZERS
from ..errors import ConvlensError
from ..options import Options, opt
from ..runs import RunDir, RunResult, default_run_name

DEFAULT_BACKBONE = "efficientnet_lite0"  # offline ImageNet weights (models/pretrained.py)

#: Fine-tuning images of at most SMALL_IMAGE_PX runs the backbone at SMALL_IMAGE_INPUT_PX unless
#: ``--image-size`` says otherwise; feature extraction keeps the weights' size (docs/speed.md, section 5).
SMALL_IMAGE_PX = 32
SMALL_IMAGE_INPUT_PX = 96

STRATEGIES = ("feature-extract", "fine-tune", "auto")
HEADS = ("linear", "logreg")
TransferResult = RunResult  # the name before every verb returned one RunResult


@dataclass
class TransferConfig(Options):
    """Everything that decides a transfer run; its fields are the flags of ``convlens transfer``.
    Defaults: the chapter's loop (13 epochs, batch 32, Adam 1e-3) on EfficientNet-Lite0, done right."""

    data: str = opt("../shared/data/catanddog", "a folder with train/ and test/ (or one sub-folder per class), or fashion-mnist")
    backbone: str = opt(DEFAULT_BACKBONE, "efficientnet_lite0 (offline), any timm name, or tv/<name>")
    weights: str | None = opt(None, "backbone weights .pth/.safetensors instead of downloading", metavar="FILE")
    image_size: int | None = opt(None, "run the backbone at PX x PX instead of its weights' size (e.g. 96 for 28-pixel images)",
                                 low=1, metavar="PX")
    strategy: str = opt("feature-extract", choices=STRATEGIES)
    head: str = opt("linear", "feature-extract head: linear (epochs on the cache) or logreg (L-BFGS, C by cross-validation)",
                    choices=HEADS)
    views: int = opt(0, "augmented views per training image whose features are cached too", low=0)
    unfreeze: int | None = opt(None, "fine-tune the last N stages (-1: all; default 2)", low=-1)
    unfreeze_from: str | None = opt(None, "fine-tune from this module on (e.g. blocks.5)", metavar="LAYER")
    backbone_lr_ratio: float = opt(0.1, "pretrained layers' lr = ratio x --lr", above=0, high=1)
    epochs: int = opt(13, "epochs of the head (feature-extract) or of fine-tuning; with --resume, the new total", low=1)
    batch_size: int = opt(32, low=1)
    lr: float = opt(1e-3, "learning rate", above=0)
    optimizer: str = opt("adam", choices=OPTIMIZERS)
    weight_decay: float = opt(0.0, low=0)
    augment: str | None = opt(None, "fine-tune batch augmentation (default crop-flip)", choices=AUGMENTS)
    head_init: str = opt("probe", "fine-tune: start from a head fitted on the cached features (LP-FT) or a random one",
                         choices=("probe", "random"))
    train_bn: bool = opt(False, "fine-tune: BatchNorm layers of unfrozen stages learn (default: all stay frozen, in eval mode)")
    seed: int = opt(0)
    device: str = opt("auto", "auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps")
    out: str = opt("runs", "folder that holds run folders", metavar="DIR", type=output_dir)
    name: str | None = opt(None, "run folder name (default: transfer-backbone-data-time)")
    val_fraction: float = opt(0.1, "share of train held out to pick the best epoch", low=0, below=1)
    test_fraction: float = opt(0.2, "share held out as test when the folder has no test/", above=0, below=1)
    limit_train: int | None = opt(None, "use a seeded subset of N training images", low=1)
    limit_test: int | None = opt(None, low=1)
    data_dir: str | None = opt(None, "where a named data set's files are (fashion-mnist)")
    cache_dir: str | None = opt("default", "feature cache (default ~/.cache/convlens/features or $CONVLENS_CACHE/features)")
    strict: bool = opt(False, "fail on the first unreadable image instead of skipping it")
    progress: bool = opt(True, "no progress bar (logs, CI)")
    large_per_class: int = opt(1000, "auto: 'large' from this median images per class", low=1)
    similar_threshold: float = opt(0.90, "auto: 'similar' from this rescaled probe accuracy", low=0, high=1)

    def check(self) -> None:
        if self.unfreeze is not None and self.unfreeze_from:
            raise ConvlensError("--unfreeze and --unfreeze-from: give one of them")


def with_input_size(cfg: TransferConfig, native_px: Callable[[], int | None], log: Callable[[str], None]) -> TransferConfig:
    """``cfg`` with ``image_size`` = :data:`SMALL_IMAGE_INPUT_PX` when it fine-tunes images of at
    most :data:`SMALL_IMAGE_PX` pixels and ``--image-size`` was not given (said in one line).
    ``native_px`` reads the images' size, only when the answer matters."""
    if cfg.image_size is not None or cfg.strategy != "fine-tune":
        return cfg
    native = native_px()
    if not native or native > SMALL_IMAGE_PX:
        return cfg
    log(f"{native}-pixel images: fine-tuning the backbone at {SMALL_IMAGE_INPUT_PX} px instead of its weights' size "
        f"(as accurate here, a fraction of the time; --image-size 224 keeps the weights' size)")
    return replace(cfg, image_size=SMALL_IMAGE_INPUT_PX)


def val_size(n_train: int, fraction: float) -> int:
    """Images held out of train to pick the epoch: ``round(fraction * n)`` (none below 10 images)."""
    return int(round(fraction * n_train)) if fraction > 0 and n_train >= 10 else 0


def default_name(cfg: TransferConfig) -> str:
    return default_run_name(f"transfer-{cfg.backbone}", cfg.data)


def create_run(cfg: TransferConfig, n_val: int, strategy: str, decision: dict[str, Any] | None) -> RunDir:
    """A run folder in the engine's layout (``kind`` = ``transfer``)."""
    from ..engine.checkpoint import epoch_checkpoints  # torch: not while the command line is parsed

    path = Path(cfg.out) / (cfg.name or default_name(cfg))
    if epoch_checkpoints(path):
        raise ConvlensError(f"{path} already holds a run: choose another --name (or --resume {path} for a fine-tune run)")
    # "model" and "val_size" as an engine run's config has them: evaluate and explain rebuild the splits from it
    config = {**cfg.to_dict(), "model": cfg.backbone, "val_size": n_val, "strategy_used": strategy, "auto": decision}
    return RunDir.create(path, config, kind="transfer")
