"""The one configuration object of a training run (nanoGPT style: a flat dataclass)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("none", "cosine", "onecycle")
AUGMENTS = ("none", "crop-flip", "crop")
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed")


@dataclass
class TrainConfig:
    """Everything that decides a run's result. Defaults are the chapter's recipe
    (Fashion-MNIST, batch 100, Adam 1e-3, 5 epochs), done right."""

    data: str = "fashion-mnist"
    model: str = "cnn"
    epochs: int = 5
    batch_size: int = 100
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9
    scheduler: str = "none"
    label_smoothing: float = 0.0
    augment: str = "none"
    seed: int = 0
    device: str = "auto"
    devices: int = 1               # >1: DistributedDataParallel, one process per device
    precision: str = "auto"        # auto = 16-mixed on CUDA, bf16-mixed on CPUs with native bf16, else 32-true
    threads: int | None = None     # torch threads per process (default: cores / devices)
    out: str = "runs"
    name: str | None = None
    val_size: int = 5000           # images held out of train to pick the best epoch (0 = none)
    eval_batch_size: int = 1000
    data_dir: str | None = None
    download: bool = False
    limit_train: int | None = None  # use only the first N (shuffled, seeded) training images
    limit_test: int | None = None
    pretrained: bool = False
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    progress: bool = True
    compile: bool = False          # torch.compile the training forward (engine/compiled.py; off: measured no faster on CPU)

    def __post_init__(self) -> None:
        from ..errors import ConvlensError

        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ConvlensError(msg)

        need(self.epochs >= 1, f"--epochs {self.epochs}: must be at least 1")
        need(self.batch_size >= 1, f"--batch-size {self.batch_size}: must be at least 1")
        need(self.lr > 0, f"--lr {self.lr}: must be positive")
        need(self.optimizer in OPTIMIZERS, f"--optimizer {self.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
        need(self.scheduler in SCHEDULERS, f"--scheduler {self.scheduler!r}: choose one of {', '.join(SCHEDULERS)}")
        need(self.augment in AUGMENTS, f"--augment {self.augment!r}: choose one of {', '.join(AUGMENTS)}")
        need(self.val_size >= 0, f"--val-size {self.val_size}: must be 0 or more")
        need(0 <= self.label_smoothing < 1, f"--label-smoothing {self.label_smoothing}: must be in [0, 1)")
        need(self.precision in PRECISIONS, f"--precision {self.precision!r}: choose one of {', '.join(PRECISIONS)}")
        need(self.devices >= 1, f"--devices {self.devices}: must be at least 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
