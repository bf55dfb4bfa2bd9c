"""Guards that stop a run that can only produce something silently wrong.

* **Divergence.** Gradient descent with too large a step overshoots: for a loss with curvature
  L along some direction, plain SGD multiplies the error there by ``|1 - lr * L|`` each step,
  so ``lr > 2 / L`` grows it geometrically until the floats overflow (``inf``, then ``nan`` once
  ``inf - inf`` appears). A non-finite loss or weight never comes back: every later step is NaN,
  and training on regardless gave an all-NaN ``best.ckpt``, exit 0 and ``predict`` printing "nan%".
  :class:`DivergenceGuard` (a Lightning callback) and :func:`check_divergence` (for plain loops,
  which states the rule) stop at the first sign, with one line naming the epoch and what to try;
  no non-finite checkpoint is ever written.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from itertools import chain
from typing import Any

import torch

from ..errors import ConvlensError, DataWarning  # noqa: F401 - DataWarning: its old home


class TrainingDiverged(ConvlensError):
    """The loss or the weights became inf/NaN: the learning rate is too large (or the data holds
    non-finite values). Epochs saved before it are intact."""


def non_finite_parameters(params: Iterable[tuple[str, torch.Tensor]]) -> list[str]:
    """Names of the tensors holding any inf/NaN (one fused reduction per tensor)."""
    return [name for name, p in params if p.is_floating_point() and not bool(torch.isfinite(p).all())]


#: a cross-entropy above this many times that of guessing uniformly (ln K) has diverged: the
#: logits differ by thousands, which no converging run reaches (Adam at lr 1000 reached 3e17)
EXPLODED_FACTOR = 1000.0


def check_divergence(loss: torch.Tensor | float | None, epoch: int, lr: float | None = None,
                     model: torch.nn.Module | None = None, num_classes: int | None = None, where: str = "") -> None:
    """Raise :class:`TrainingDiverged` when ``loss`` is inf/NaN; or, given ``num_classes`` K, the
    cross-entropy exceeds :data:`EXPLODED_FACTOR` x max(ln K, 1) (ln K: a uniform guess, what a fresh
    network scores); or ``model`` has an inf/NaN parameter or buffer. ``epoch`` counts from 1, as the
    run folder does. Cost: one scalar read; one pass over the weights when ``model`` is given (do that
    once an epoch)."""
    what = None
    if loss is not None:
        value = float(loss.detach().float()) if isinstance(loss, torch.Tensor) else float(loss)
        if not math.isfinite(value):
            what = f"the training loss is {value}"
        elif num_classes and num_classes > 1:
            uniform = math.log(num_classes)
            if value > EXPLODED_FACTOR * max(uniform, 1.0):
                what = f"the training loss is {value:.3g}, over {EXPLODED_FACTOR:g}x that of a uniform guess ({uniform:.2f})"
    if what is None and model is not None:
        bad = non_finite_parameters(chain(model.named_parameters(), model.named_buffers()))
        if bad:
            what = f"{len(bad)} weight tensors hold inf/NaN (e.g. {bad[0]})"
    if what is not None:
        advice = "" if lr is None or not math.isfinite(lr) else f" (it is {lr:g}; try {lr / 10:g} or less)"
        raise TrainingDiverged(f"training diverged in epoch {epoch}{where}: {what}; lower --lr{advice}")


def _classes(pl_module: Any) -> int | None:
    meta = getattr(pl_module, "meta", None)
    return meta.get("num_classes") if isinstance(meta, dict) else None


@functools.cache
def _divergence_guard_class() -> type:
    """The Lightning callback, built on first use: the plain-loop users of this module (graph
    training) must not pay for importing Lightning."""
    import lightning as L

    class DivergenceGuard(L.Callback):
        """Stop Lightning training at the first non-finite loss (checked after every loader
        batch) or weight (checked before each epoch's evaluation, hence before any checkpoint of
        that epoch is saved). Put it before the callback that saves checkpoints: callbacks run
        in list order. Epochs completed before stay saved; :class:`TrainingDiverged` says which
        epoch diverged."""

        def __init__(self, lr: float):
            self.lr = lr

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
            if isinstance(loss, torch.Tensor):
                check_divergence(loss, trainer.current_epoch + 1, self.lr, num_classes=_classes(pl_module),
                                 where=f" (loader batch {batch_idx + 1})")

        def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
            if not trainer.sanity_checking:
                check_divergence(None, trainer.current_epoch + 1, self.lr, model=pl_module)

        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            # the epoch's mean training loss: a step inside a loader batch (several optimizer
            # steps each, for small images) may have been inf while the last one looked finite
            if trainer.sanity_checking or not hasattr(pl_module, "epoch_metrics"):
                return
            if (loss := pl_module.epoch_metrics().get("train_loss")) is not None:
                check_divergence(loss, trainer.current_epoch + 1, self.lr, num_classes=_classes(pl_module))

    return DivergenceGuard


def __getattr__(name: str) -> Any:
    if name == "DivergenceGuard":  # ``from convlens.engine.guards import DivergenceGuard`` imports Lightning here
        return _divergence_guard_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
