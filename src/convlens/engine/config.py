"""The one configuration object of a training run (nanoGPT style: a flat dataclass). Its fields
are the flags of ``convlens train`` and ``compare`` (:mod:`convlens.options`)."""
from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from typing import Any

from ..argtypes import output_dir
from ..options import Options, opt
from .optim import OPTIMIZERS

SCHEDULERS = ("none", "cosine", "onecycle")
AUGMENTS = ("none", "crop-flip", "crop")
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed")


def _given_arguments_are_explicit(cls: type) -> type:
    """``TrainConfig(recipe="fast", data="fashion-mnist")`` keeps Fashion-MNIST, although it is the
    default a recipe would fill: what a Python caller passes counts as set, as flags do on the
    command line. A caller that passes ``explicit`` itself (the CLI, ``from_dict``, ``replace``)
    says it whole."""
    init = cls.__init__
    names = [f.name for f in fields(cls)]

    @functools.wraps(init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "explicit" not in kwargs and len(args) <= names.index("explicit"):
            kwargs["explicit"] = tuple(sorted({*names[:len(args)], *kwargs}))
        init(self, *args, **kwargs)

    cls.__init__ = __init__
    return cls


@_given_arguments_are_explicit
@dataclass
class TrainConfig(Options):
    """Everything that decides a run's result. Defaults are the chapter's recipe
    (Fashion-MNIST, batch 100, Adam 1e-3, 5 epochs), done right."""

    data: str = opt("fashion-mnist", "fashion-mnist, or a folder with one sub-folder per class")
    model: str = opt("cnn", "cnn, dnn, cnn_chapter, fashion_vgg, or any timm name")
    epochs: int = opt(5, "passes over the training set; with --resume, the new total", low=1)
    batch_size: int = opt(100, "images per optimizer step", low=1)
    lr: float = opt(1e-3, "learning rate", above=0)
    optimizer: str = opt("adam", choices=OPTIMIZERS)
    weight_decay: float = opt(0.0, "L2 penalty (decoupled for adamw)", low=0)
    momentum: float = opt(0.9, "SGD momentum (Nesterov)", low=0, below=1)
    scheduler: str = opt("none", "learning-rate schedule per step", choices=SCHEDULERS)
    label_smoothing: float = opt(0.0, low=0, below=1)
    augment: str = opt("none", "batch augmentation on the device", choices=AUGMENTS)
    seed: int = opt(0, "seeds the split, the order, the initial weights and dropout")
    device: str = opt("auto", "auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps")
    devices: int = opt(1, "N > 1: DistributedDataParallel over N devices (CPU cores or GPUs) of this machine", low=1)
    num_nodes: int = opt(1, "machines, each running --devices processes (README: More than one device)", low=1)
    precision: str = opt("auto", "auto: 16-mixed on CUDA, bf16-mixed on CPUs with native bf16, else 32-true",
                         choices=PRECISIONS)
    threads: int | None = opt(None, "torch threads per process (default: $CONVLENS_THREADS, else cores / devices)", low=1)
    out: str = opt("runs", "folder that holds run folders", metavar="DIR", type=output_dir)
    name: str | None = opt(None, "run folder name (default: model-data-time)")
    val_size: int = opt(5000, "training images held out to pick the best epoch (0: none)", low=0)
    eval_batch_size: int = opt(1000, "images per evaluation batch", low=1)
    test_every_epoch: bool = opt(True, "test once, after the last epoch, as the chapter's loop does (no per-epoch test curve)")
    data_dir: str | None = opt(None, "folder holding the data set's files")
    download: bool = opt(False, "download the data set if it is not found (online)")
    limit_train: int | None = opt(None, "train on a seeded subset of N images", low=1)
    limit_test: int | None = opt(None, "test on a seeded subset of N images", low=1)
    pretrained: bool = opt(False, "start from the model's ImageNet weights (the data are fitted to them)")
    model_kwargs: dict[str, Any] = opt(help="arguments of the model's constructor", cli=False, factory=dict)
    progress: bool = opt(True, "no progress bar (logs, CI)")
    recipe: str = opt("auto", "a whole way of training (engine/recipes.py); auto: he for resnet20..110/plain20..56; "
                      "it fills every field left at its default", choices=("auto", "he", "fast", "none"))
    explicit: tuple[str, ...] = opt((), "fields the user set: a recipe never overrides them (default: the keyword "
                                    "arguments given, as the flags given on the command line)", cli=False)
    flush_denormals: bool = opt(True, "keep subnormal floats during CPU training (flushing them to zero made epochs 2-5 of the "
                                "chapter CNN 1.1x faster on an Intel Xeon: Adam's moments of dead units; docs/speed.md)")
    compile: bool = opt(False, "torch.compile the training forward/backward (Inductor; engine/compiled.py): off, measured no faster on CPU (docs/speed.md)")

    def __post_init__(self) -> None:
        from .recipes import apply_recipe_defaults

        apply_recipe_defaults(self)  # the recipe fills the fields left at their defaults, then every field is checked
        super().__post_init__()
