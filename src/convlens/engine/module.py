"""The Lightning module every image classifier of convlens trains with."""
from __future__ import annotations

import time
from typing import Any, Callable

import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import TrainConfig
from .optim import fast_optimizer_kwargs, make_optimizer, per_step
from .preprocess import BatchPreprocessor, wants_channels_last

ParamGroupsFn = Callable[[nn.Module, float], list[dict[str, Any]]]


def freeze_bn_of_frozen_layers(model: nn.Module) -> int:
    """Put BatchNorm layers whose parameters are all frozen into eval mode; return how many.
    ``requires_grad=False`` alone does not freeze BatchNorm: in train mode it keeps updating its
    running mean/variance (the chapter's "frozen" backbone drifted this way, docs/transfer.md)."""
    n = 0
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            params = list(m.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                m.eval()
                n += 1
    return n


class ClassifierModule(L.LightningModule):
    """Cross-entropy training of ``model`` on batches ``(x uint8 (B, C, H, W), y int64 (B,))``, which
    :class:`BatchPreprocessor` turns into normalised floats on the device. Evaluation loaders are
    named (``val``, ``test``); per-epoch sums are kept here, so the run record never depends on
    hook ordering, and all-reduced under DDP."""

    def __init__(self, model: nn.Module, cfg: TrainConfig, meta: dict[str, Any],
                 eval_names: list[str], param_groups: ParamGroupsFn | None = None):
        super().__init__()
        # manual optimisation: training_step takes several steps per Lightning batch, and it skips
        # the closure machinery of Lightning's automatic loop (same results, seeded)
        self.automatic_optimization = False
        self.model = model
        self.cfg = cfg
        self.meta = meta
        self.eval_names = eval_names
        self.param_groups_fn = param_groups
        pcfg = getattr(model, "pretrained_cfg", {}) or {}
        self.channels_last = wants_channels_last(model)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        # the training forward, compiled or not (engine/compiled.py); set outside nn.Module's
        # registry so the state dict keeps the model's keys only
        object.__setattr__(self, "train_forward", self.model)
        self.prep = BatchPreprocessor(pcfg.get("mean", (0.5,)), pcfg.get("std", (0.5,)), cfg.augment, self.channels_last)
        self._sums: dict[str, torch.Tensor] = {}
        self._epoch_start = self._train_seconds = 0.0
        self._seen_images = 0
        self.epoch_steps = 0
        self._last_loss: torch.Tensor | None = None
        self.final_test_probs: list[torch.Tensor] = []
        # set by the engine when a loader batch holds several optimizer steps (see training_step)
        self.micro_batch: int | None = None
        self.drop_last = False
        self.steps_per_epoch: int | None = None
        self.eval_sizes: dict[str, int] = {}  # ddp: images per evaluation split (engine/distributed.py)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.prep(x))

    # ---- training -----------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        # Reseed per epoch: dropout and augmentation of epoch k are the same whether or not the run
        # was resumed before it. ddp: each rank its own stream (rank 0's is the one-process stream),
        # else every rank would draw the same dropout masks and crops for its different images
        torch.manual_seed(self.cfg.seed * 1000 + self.current_epoch + 7919 * self.global_rank)
        freeze_bn_of_frozen_layers(self.model)
        self._sums = {}
        self._seen_images = 0
        self.epoch_steps = 0
        self._last_loss = None
        self._epoch_start = time.perf_counter()

    def _sums_of(self, split: str, device: torch.device) -> torch.Tensor:
        """The split's running (loss sum, correct, images) of this epoch, in float64."""
        return self._sums.setdefault(split, torch.zeros(3, dtype=torch.float64, device=device))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor | None:
        """One optimizer step per ``micro_batch`` images of the loader's batch: a group of consecutive
        batches (``steps_per_loader_batch``), each its own step (so the same weights, seeded), but
        Lightning's per-batch loop and hooks, the preprocessing (when it draws no random numbers) and
        the metric sums run once per group: for the chapter's DNN, a fifth of the training time."""
        x, y = batch
        size = self.micro_batch or len(y)
        whole = self.prep.augment == "none"
        if whole:  # per image and random-free: the same numbers for the group as slice by slice
            x = self.prep(x, train=True)
        opt, sched = self.optimizers(), self.lr_schedulers()
        losses, correct, sizes = [], [], []  # per step: its loss, right answers and images
        for xb, yb in zip(x.split(size), y.split(size)):
            if self.drop_last and len(yb) < size:
                break  # only the epoch's last batch can be short: what DataLoader(drop_last=True) drops
            logits = self.train_forward(xb if whole else self.prep(xb, train=True))
            loss = F.cross_entropy(logits, yb, label_smoothing=self.cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            opt.step()
            if sched is not None:
                sched.step()
            losses.append(loss.detach())
            correct.append((logits.argmax(1) == yb).sum())
            sizes.append(len(yb))
        if not losses:
            return None
        n = torch.tensor(sizes, dtype=torch.float64, device=y.device)
        self._sums_of("train", y.device).add_(torch.stack([(torch.stack(losses).double() * n).sum(),
                                                           torch.stack(correct).sum().double(), n.sum()]))
        # No per-step self.log: it cost ~2.7 ms a step (more than the DNN's whole step).
        # The progress bar reads live_metrics() when it refreshes instead.
        self._last_loss = losses[-1]
        self._seen_images += sum(sizes)
        self.epoch_steps += len(losses)
        return losses[-1]

    def live_metrics(self) -> dict[str, float]:
        """Loss of the last step and images/s of this epoch so far, for the progress bar."""
        if self._last_loss is None:
            return {}
        secs = max(time.perf_counter() - self._epoch_start, 1e-9)
        return {"loss": float(self._last_loss), "img_s": round(self._seen_images / secs)}

    def on_validation_epoch_start(self) -> None:
        self.final_test_probs = []
        if not self.trainer.sanity_checking:
            self._train_seconds = time.perf_counter() - self._epoch_start

    # ---- evaluation ---------------------------------------------------------------------
    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        x, y = batch
        name = self.eval_names[dataloader_idx]
        last_epoch = self.current_epoch == self.trainer.max_epochs - 1
        if name == "test" and not (self.cfg.test_every_epoch or last_epoch):
            return
        if self.trainer.world_size > 1 and name in self.eval_sizes:  # ddp: leave the sampler's padding out
            from .distributed import real_in_batch

            k = real_in_batch(self.eval_sizes[name], batch_idx * self.cfg.eval_batch_size, len(y),
                              self.trainer.global_rank, self.trainer.world_size)
            if k == 0:  # all padding: still hold the split's sums, every rank reduces the same ones
                self._sums_of(name, y.device)
                return
            x, y = x[:k], y[:k]
        # under the run's precision (Lightning's autocast): `convlens evaluate` uses the same
        # (evaluate_model(precision=...)), so every accuracy of a run agrees to the image
        logits = self.model(self.prep(x))
        self._sums_of(name, y.device).add_(torch.stack([F.cross_entropy(logits, y).detach().double() * len(y),
                                                         (logits.argmax(1) == y).sum().double(),
                                                         torch.tensor(len(y), dtype=torch.float64, device=y.device)]))
        if name == "test" and last_epoch:
            # the final model's test predictions, kept so the report need not evaluate again
            self.final_test_probs.append(logits.float().softmax(1).cpu())

    def epoch_metrics(self) -> dict[str, float]:
        """Reduced sums of the epoch so far: ``{split}_loss``, ``{split}_acc``."""
        out: dict[str, float] = {}
        for split, s in self._sums.items():
            s = self.trainer.strategy.reduce(s.clone(), reduce_op="sum") if self.trainer.world_size > 1 else s
            n = max(float(s[2]), 1.0)
            out[f"{split}_loss"] = float(s[0]) / n
            out[f"{split}_acc"] = float(s[1]) / n
            out[f"{split}_n"] = int(s[2])
        return out

    # ---- optimisation -------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        cfg = self.cfg
        from .recipes import resolve_recipe

        def total_steps() -> int:
            return int(self.steps_per_epoch * self.trainer.max_epochs if self.steps_per_epoch
                       else self.trainer.estimated_stepping_batches)

        recipe = resolve_recipe(cfg.recipe, cfg.model)
        if recipe is not None and recipe.optimizer is not None and self.param_groups_fn is None:
            return recipe.optimizer(self, total_steps())
        groups = (self.param_groups_fn(self.model, cfg.lr) if self.param_groups_fn
                  else [{"params": self.model.parameters(), "lr": cfg.lr}])
        groups = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in groups]
        opt = make_optimizer(cfg.optimizer, [g for g in groups if g["params"]], cfg.lr, cfg.weight_decay, cfg.momentum,
                             **fast_optimizer_kwargs(self.model))
        if cfg.scheduler == "none":
            return opt
        if cfg.scheduler == "onecycle":
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in opt.param_groups],
                                                        total_steps=total_steps(), pct_start=0.25)
        else:
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps())
        return per_step(opt, sched)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["convlens"] = self.meta
