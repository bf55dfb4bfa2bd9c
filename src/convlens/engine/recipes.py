"""Training recipes: a name for a whole way of training (``--recipe he|fast``).

A recipe fills every :class:`~convlens.engine.config.TrainConfig` field the user left at its
default (an explicit ``--lr`` or ``--epochs`` wins) and may bring what flags cannot say: its own
optimizer and schedule, a model initialised from the data, Lightning callbacks.

``he`` -- He et al. 2016, section 4.2, the default of the CIFAR ResNets and plain nets
    SGD with momentum 0.9 (no Nesterov), weight decay 1e-4, batch 128, lr 0.1 divided by 10
    at 50% and 75% of training (32k and 48k of 64k iterations; 64k x 128 / 45k = 182 epochs),
    4-pixel zero-pad + random 32x32 crop + horizontal flip, a 45k/5k train/val split. ResNet-110
    warms up at lr 0.01 for its first 400 iterations, as the paper does.

``fast`` -- the fastest way convlens knows to a good CIFAR-10 model on a CPU, after airbench
    (Jordan 2024, "94% on CIFAR-10 in 3.29 seconds on a single GPU"), itself after Page's
    ResNet-9 and hlb-CIFAR10: the VGG-style :class:`~convlens.models.cifar.CifarVGG` whose
    first layer is set to whiten 2x2 patches and frozen; BatchNorm with frozen scales (only
    shifts learn, at 64x the learning rate); label smoothing 0.2; Nesterov SGD with a
    triangular learning rate; Lookahead (an EMA of the weights every 5 steps, pulled back into
    them); 2-pixel reflect translation + flip; 6-view test-time augmentation at the end; all
    50,000 training images (no validation split). Width and epochs were chosen for a 2-core
    CPU by measuring what its convolutions really reach (see ``benchmarks/cifar10.py`` and
    docs/resnet.md). Any data set's config builds the net: ``--recipe fast --data fashion-mnist``
    makes a 1-channel stem of 8 whitening filters at 28 px, narrower (48/96/96) and for 4 epochs, and is
    the fastest way to 93% on Fashion-MNIST that convlens knows (docs/speed.md, part 2b).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import nn

from ..models.cifar import CIFAR_RESNETS, CifarVGG, patch_whitening
from .optim import fast_optimizer_kwargs, make_optimizer, per_step

HE_MODELS = frozenset(name for name, *_ in CIFAR_RESNETS)


@dataclass(frozen=True)
class Recipe:
    """``defaults``: TrainConfig fields; ``per_data``: defaults that replace those for one data set;
    ``optimizer(module, total_steps)`` -> Lightning's ``configure_optimizers`` value;
    ``prepare(model, train_images)`` before training; ``callbacks(cfg)`` -> extra Lightning callbacks."""

    name: str
    summary: str
    defaults: dict[str, Any] = field(default_factory=dict)
    per_data: dict[str, dict[str, Any]] = field(default_factory=dict)
    optimizer: Callable[..., Any] | None = None
    prepare: Callable[..., None] | None = None
    callbacks: Callable[..., list[Any]] | None = None


# ---- He et al. ------------------------------------------------------------------------------
def _he_optimizer(module: Any, total_steps: int) -> dict[str, Any]:
    cfg = module.cfg
    opt = make_optimizer("sgd", [p for p in module.model.parameters() if p.requires_grad], cfg.lr, cfg.weight_decay,
                         cfg.momentum, nesterov=False, **fast_optimizer_kwargs(module.model))
    milestones = (int(0.5 * total_steps), int(0.75 * total_steps))
    warm = 400 if getattr(module.model, "depth", 0) >= 110 else 0  # "0.01 until training error is below 80% (~400 iterations)"

    def factor(step: int) -> float:
        return (0.1 if step < warm else 1.0) * 0.1 ** sum(step >= m for m in milestones)

    return per_step(opt, torch.optim.lr_scheduler.LambdaLR(opt, factor))


HE = Recipe("he", "He et al. 2016: SGD 0.9, wd 1e-4, batch 128, lr 0.1 /10 at 50% and 75%, crop+flip, 45k/5k",
            defaults={"data": "cifar10", "epochs": 182, "batch_size": 128, "lr": 0.1, "optimizer": "sgd", "momentum": 0.9,
                      "weight_decay": 1e-4, "augment": "crop-flip", "val_size": 5000},
            optimizer=_he_optimizer)


# ---- fast (airbench) ----------------------------------------------------------------------------
#: airbench94's hyper-parameters, per 1024 examples of a summed loss (its convention)
AIRBENCH = {"lr": 11.5, "momentum": 0.85, "weight_decay": 0.0153, "bias_scaler": 64.0, "label_smoothing": 0.2,
            "whiten_bias_epochs": 3, "batch_size": 1024}
FAST_WIDTHS = "64,128,128"  # airbench93's widths: 54M multiply-adds per image, 2.2x fewer than airbench94's
FAST_EPOCHS = 10
#: Fashion-MNIST is easier than CIFAR-10: fp32 under the AVX2 cap on a Xeon, 4 epochs of 48/96/96 gave 93.16% and
#: 93.30% (seeds 0, 1) in 179-180 s of training, airbench93's 64/128/128 93.43% in 275 s (docs/speed.md, part 2b)
FAST_FASHION = {"epochs": 4, "model_kwargs": {"widths": "48,96,96", "tta": 2}}


def airbench_lr_wd(batch_size: int, momentum: float = AIRBENCH["momentum"]) -> tuple[float, float]:
    """airbench's (lr, wd) for a *summed* loss, converted to PyTorch's SGD on the *mean* loss.

    With ``k = 1024 (1 + 1/(1 - m))`` airbench steps with ``lr_s = 11.5 / k`` on the sum of B
    losses and shrinks the weights by ``d = 0.0153 B / k`` per step (its ``weight_decay=wd/lr``).
    On the mean loss the same update is ``lr = lr_s B`` and ``weight_decay = d / lr``."""
    k = 1024 * (1 + 1 / (1 - momentum))
    lr = AIRBENCH["lr"] / k * batch_size
    return lr, AIRBENCH["weight_decay"] * batch_size / k / lr


def _fast_optimizer(module: Any, total_steps: int) -> dict[str, Any]:
    cfg, model = module.cfg, module.model
    bn = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    biases = [m.bias for m in bn if m.bias is not None and m.bias.requires_grad]
    ids = {id(p) for p in biases}
    others = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
    s = AIRBENCH["bias_scaler"]
    # the BatchNorm shifts learn 64x faster; both groups shrink by the same lr * wd per step
    groups = [{"params": others, "lr": cfg.lr, "weight_decay": cfg.weight_decay},
              {"params": biases, "lr": cfg.lr * s, "weight_decay": cfg.weight_decay / s}]
    opt = make_optimizer("sgd", groups, cfg.lr, momentum=cfg.momentum, nesterov=True, **fast_optimizer_kwargs(model))

    def triangle(step: int) -> float:  # 0.2 -> 1 over the first 23% of steps, then down to 0.07
        t = step / max(1, total_steps)
        return 0.2 + 0.8 * t / 0.23 if t < 0.23 else 1.0 + (0.07 - 1.0) * (t - 0.23) / 0.77

    return per_step(opt, torch.optim.lr_scheduler.LambdaLR(opt, triangle))


def _fast_prepare(model: nn.Module, train: Any) -> None:
    """Whiten the stem on 5,000 training images (normalised as the model sees them), freeze it;
    freeze every BatchNorm scale at 1 (airbench: only the shifts learn)."""
    if not isinstance(model, CifarVGG):
        return
    from .preprocess import normalise

    patch_whitening(model.stem, normalise(train.images[:5000], model.pretrained_cfg["mean"], model.pretrained_cfg["std"]))
    model.stem.weight.requires_grad_(False)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.requires_grad_(False)


def _fast_callbacks(cfg: Any) -> list[Any]:
    import lightning as L

    from .preprocess import BatchPreprocessor, crop_windows

    class ReflectTranslateFlip(BatchPreprocessor):
        """airbench's augmentation: a random translation of up to 2 pixels (reflect padding) and
        an *alternating* flip: each image is mirrored in every other epoch (which half of the epochs
        is set per image by a hash of its pixels), so over two epochs every image is seen both ways,
        more evenly than independent coin flips."""

        epoch = 0

        def forward(self, x: torch.Tensor, train: bool = False) -> torch.Tensor:
            if train:
                parity = (x.flatten(1).to(torch.int64) * torch.arange(1, x[0].numel() + 1, device=x.device)).sum(1) % 2
                flip = parity != (self.epoch % 2)
                x = x.float()
                oy, ox = torch.randint(0, 5, (2, len(x)), device=x.device)
                x = crop_windows(torch.nn.functional.pad(x, (2, 2, 2, 2), mode="reflect"), oy, ox, *x.shape[-2:])
                x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
            return super().forward(x if x.dtype == torch.uint8 else x / 255.0, train=False)

    class Fast(L.Callback):
        """Lookahead-EMA every 5 steps, freeze the stem's bias after 3 epochs, TTA only for the last evaluation."""

        def __init__(self) -> None:
            self.step, self.ema, self.total, self.tta = 0, None, 1, 0

        def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
            p = pl_module.prep
            pl_module.prep = ReflectTranslateFlip(p.mean.flatten().tolist(), p.std.flatten().tolist(), "crop-flip",
                                                  p.channels_last).to(p.mean.device)
            self.total = pl_module.steps_per_epoch * trainer.max_epochs
            self.tta = getattr(pl_module.model, "tta", 0)
            self.step = pl_module.steps_per_epoch * trainer.current_epoch

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            model = pl_module.model
            pl_module.prep.epoch = trainer.current_epoch
            if hasattr(model, "tta"):
                model.tta = 0
            if getattr(model, "stem", None) is not None and model.stem.bias is not None:
                model.stem.bias.requires_grad_(trainer.current_epoch < AIRBENCH["whiten_bias_epochs"])

        @torch.no_grad()
        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            """Lookahead from the 4th epoch on: every 5 steps the weights (and BN statistics) move
            into an EMA whose decay grows as (step/total)^3 and are replaced by it."""
            before = self.step
            self.step = pl_module.steps_per_epoch * trainer.current_epoch + pl_module.epoch_steps
            if trainer.current_epoch < 3 or self.step // 5 == before // 5:
                return
            sd = pl_module.model.state_dict()
            if self.ema is None:
                self.ema = {k: v.detach().clone() for k, v in sd.items() if v.is_floating_point()}
                return
            self._update(sd, 0.95 ** 5 * min(1.0, self.step / self.total) ** 3)

        @torch.no_grad()
        def _update(self, sd: dict[str, torch.Tensor], decay: float) -> None:
            for k, e in self.ema.items():
                e.lerp_(sd[k], 1 - decay)
                sd[k].copy_(e)

        def on_validation_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            if trainer.sanity_checking:
                return
            if self.ema is not None:  # the weights evaluated and saved are the average's
                self._update(pl_module.model.state_dict(), 1.0)
            if hasattr(pl_module.model, "tta") and trainer.current_epoch == trainer.max_epochs - 1:
                pl_module.model.tta = self.tta  # multi-view TTA for the final evaluation only

    return [Fast()]


def _fast_defaults() -> dict[str, Any]:
    lr, wd = airbench_lr_wd(AIRBENCH["batch_size"])
    return {"data": "cifar10", "model": "cifar_vgg", "epochs": FAST_EPOCHS, "batch_size": AIRBENCH["batch_size"], "lr": lr,
            "optimizer": "sgd", "momentum": AIRBENCH["momentum"], "weight_decay": wd,
            "label_smoothing": AIRBENCH["label_smoothing"], "augment": "crop-flip", "val_size": 0,
            "eval_batch_size": 500, "model_kwargs": {"widths": FAST_WIDTHS, "tta": 2}}


FAST = Recipe("fast", "airbench on a CPU: whitened stem, frozen BN scales, label smoothing, Lookahead, 6-view TTA",
              defaults=_fast_defaults(), per_data={"fashion-mnist": FAST_FASHION}, optimizer=_fast_optimizer,
              prepare=_fast_prepare, callbacks=_fast_callbacks)

RECIPES: dict[str, Recipe | None] = {"none": None, "he": HE, "fast": FAST}


def resolve_recipe(name: str, model: str) -> Recipe | None:
    """``auto``: ``he`` for He et al.'s CIFAR ResNets and plain nets, nothing for other models."""
    if name == "auto":
        return HE if model in HE_MODELS else None
    from ..errors import ConvlensError

    if name not in RECIPES:
        raise ConvlensError(f"--recipe {name!r}: choose one of auto, {', '.join(RECIPES)}")
    return RECIPES[name]


def apply_recipe_defaults(cfg: Any) -> None:
    """Fill ``cfg``'s fields that still hold TrainConfig's defaults with the recipe's (in place),
    except those named in ``cfg.explicit`` (what the user set, even to a default value)."""
    cfg.explicit = tuple(cfg.explicit)  # a list after a JSON round trip
    if (recipe := resolve_recipe(cfg.recipe, cfg.model)) is None:
        return

    def untouched(f: Any) -> bool:
        default = f.default_factory() if callable(f.default_factory) else f.default
        return f.name not in cfg.explicit and getattr(cfg, f.name) == default

    data_field = next(f for f in fields(cfg) if f.name == "data")
    data = recipe.defaults.get("data", cfg.data) if untouched(data_field) else cfg.data
    defaults = {**recipe.defaults, **recipe.per_data.get(data, {})}
    for f in fields(cfg):
        if f.name in defaults and untouched(f):
            setattr(cfg, f.name, defaults[f.name])
