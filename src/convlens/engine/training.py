"""``train()``: one function behind ``convlens train``, ``compare`` and the fine-tuning of
``transfer``. Lightning runs the loop; this file decides what a run records.

What differs from the chapter's loop, and why (measured in ../shared/chapter-code-notes.md):
batches are sliced from uint8 tensors in memory (its per-image PIL conversion was 47 of the
69 s of the DNN's run); the training order is shuffled (it was not); evaluation is in eval
mode under ``no_grad`` once per epoch (it ran in train mode on the whole test set every 50
iterations: 51–64% of the run time, and BatchNorm absorbed the test set's statistics); the
best epoch is chosen on a validation split carved from train, never on test.
"""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .._runtime import resolve_precision, seed_everything, select_device, set_threads, skip_nvml_probe_without_cuda, tune_allocator
from ..data.base import ImageTensors, tensor_loader
from ..data.registry import DatasetSplits, list_datasets, load_dataset
from ..errors import ConvlensError
from ..runs import RunDir, default_run_name
from .checkpoint import epoch_checkpoints, load_state_dict_checked, model_meta, read_checkpoint
from .config import TrainConfig
from .module import ClassifierModule, ParamGroupsFn


class TrainingInterrupted(ConvlensError):
    """Ctrl-C or a signal stopped training; the last complete epoch is saved."""


@dataclass
class TrainResult:
    run: RunDir
    model: nn.Module
    history: list[dict[str, Any]]
    test_acc: float
    best_epoch: int
    meta: dict[str, Any]
    seconds: float
    figures: dict[str, Path] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"TrainResult(run={str(self.run.path)!r}, test_acc={self.test_acc:.4f}, best_epoch={self.best_epoch}, seconds={self.seconds:.1f})"


# ---- data ---------------------------------------------------------------------------------
def _fit_to_model(split: ImageTensors, pcfg: dict[str, Any]) -> ImageTensors:
    """Give images the channel count and size the model expects (grey -> 3 channels, resize)."""
    want = tuple(pcfg.get("input_size", split.images.shape[1:]))
    x = split.images
    if len(want) == 3 and x.shape[1] != want[0]:
        if x.shape[1] == 1 and want[0] == 3:
            x = x.expand(-1, 3, -1, -1).contiguous()
        elif x.shape[1] == 3 and want[0] == 1:
            luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)  # ITU-R BT.601, as PIL's convert("L")
            x = (x.float() * luma).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
        else:
            raise ConvlensError(f"data {split.name!r} has {x.shape[1]} channels, the model expects {want[0]}")
    if len(want) == 3 and tuple(x.shape[2:]) != tuple(want[1:]):
        if len(x) * want[0] * want[1] * want[2] > 4e9:
            raise ConvlensError(f"resizing {len(x):,} images of {split.name} to {want[1]}x{want[2]} needs over 4 GB: use --limit-train/--limit-test")
        x = torch.cat([torch.nn.functional.interpolate(x[i:i + 512].float(), size=want[1:], mode="bilinear", antialias=True, align_corners=False)
                       .round().clamp(0, 255).to(torch.uint8) for i in range(0, len(x), 512)])
    if x is split.images:
        return split
    return ImageTensors(x, split.labels, split.classes, split.name, split.source, split.paths, dict(split.meta))


def _seeded_head(split: ImageTensors, n: int | None, seed: int) -> ImageTensors:
    if n is None or n >= len(split):
        return split
    g = torch.Generator().manual_seed(seed + 7)
    return split.subset(torch.randperm(len(split), generator=g)[:n].sort().values)


def prepare_data(config: dict[str, Any], model: nn.Module, meta: dict[str, Any] | None = None,
                 data: DatasetSplits | None = None) -> dict[str, Any]:
    """Load (or take) the data named in ``config`` and cut it into train / val / test.

    The validation split is class-stratified and seeded by ``config["seed"]``, so every verb
    that reopens a run (``evaluate``, ``--resume``) sees the same split.
    """
    pcfg = dict(getattr(model, "pretrained_cfg", {}) or {})
    if meta:
        pcfg.update(meta.get("pretrained_cfg", {}))
    if data is None:
        name = config["data"]
        kwargs: dict[str, Any] = {"data_dir": config.get("data_dir")}
        if name.lower() in list_datasets():
            kwargs["download"] = config.get("download", False)
        else:
            kwargs["pretrained_cfg"] = pcfg
        data = load_dataset(name, **kwargs)
    seed = int(config.get("seed", 0))
    train = _seeded_head(data.train, config.get("limit_train"), seed)
    test = _seeded_head(data.test, config.get("limit_test"), seed)
    val_size = int(config.get("val_size", 0))
    if val_size >= len(train):
        raise ConvlensError(f"--val-size {val_size}: the training split has only {len(train)} images")
    train, val = train.split(val_size, seed=seed)
    return {"train": _fit_to_model(train, pcfg), "val": _fit_to_model(val, pcfg), "test": _fit_to_model(test, pcfg),
            "classes": data.classes, "name": data.name}


# ---- checkpoints ------------------------------------------------------------------------
def _atomic_copy(src: Path, dst: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    os.close(fd)
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _recorder_class():
    import lightning as L

    class RunRecorder(L.Callback):
        """After each epoch's evaluation: append the metrics row, then save ``epoch=NNN.ckpt``
        (Lightning's full, resumable checkpoint), ``last.ckpt`` and, when the validation
        accuracy improved, ``best.ckpt``."""

        def __init__(self, run: RunDir, has_val: bool, n_train: int):
            self.run, self.has_val, self.n_train = run, has_val, n_train
            self.best_score = float("-inf")
            self.best_epoch = 0
            self.history: list[dict[str, Any]] = []

        def on_validation_end(self, trainer: "L.Trainer", pl_module: ClassifierModule) -> None:
            if trainer.sanity_checking:
                return
            epoch = trainer.current_epoch + 1
            row: dict[str, Any] = {"epoch": epoch, **pl_module.epoch_metrics()}
            secs = pl_module._train_seconds
            row["lr"] = trainer.optimizers[0].param_groups[0]["lr"]
            row["seconds"] = round(secs, 3)
            row["images_per_s"] = round(self.n_train / secs, 1) if secs > 0 else None
            score = row.get("val_acc") if self.has_val else epoch  # no val: best = last
            improved = score is not None and score > self.best_score
            if improved:
                self.best_score, self.best_epoch = float(score), epoch
            self.history.append(row)
            if trainer.is_global_zero:
                self.run.append_metrics(row)
            ck = self.run.checkpoints_dir / f"epoch={epoch:03d}.ckpt"
            trainer.save_checkpoint(ck, weights_only=False)  # collective under DDP; rank 0 writes, atomically
            if trainer.is_global_zero:
                _atomic_copy(ck, self.run.checkpoints_dir / "last.ckpt")
                if improved:
                    _atomic_copy(ck, self.run.checkpoints_dir / "best.ckpt")

        def state_dict(self) -> dict[str, Any]:
            return {"best_score": self.best_score, "best_epoch": self.best_epoch}

        def load_state_dict(self, state: dict[str, Any]) -> None:
            self.best_score, self.best_epoch = state["best_score"], state["best_epoch"]

    return RunRecorder


def quiet_lightning() -> None:
    """Lightning's start-up chatter (GPU/TPU availability, tips) buries the progress bar."""
    import logging

    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                 "lightning.pytorch.trainer.connectors.checkpoint_connector"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _progress_bar_class():
    from lightning.pytorch.callbacks import TQDMProgressBar

    class EpochProgressBar(TQDMProgressBar):
        """Lightning's tqdm bar (step, loss, images/s, ETA) with epochs counted from 1 like the
        run folder's files, and without the logger's version number."""

        def on_train_epoch_start(self, trainer: Any, *args: Any) -> None:
            super().on_train_epoch_start(trainer, *args)
            # count optimizer steps, not Lightning's batches (a group of steps each for small images)
            self.train_progress_bar.reset(total=trainer.lightning_module.steps_per_epoch)
            self.train_progress_bar.set_description(f"Epoch {trainer.current_epoch + 1}/{trainer.max_epochs}")

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            bar = self.train_progress_bar
            n = pl_module.epoch_steps
            if not bar.disable and ((batch_idx + 1) % self.refresh_rate == 0 or n == bar.total):
                bar.n = n
                bar.refresh()
                bar.set_postfix(self.get_metrics(trainer, pl_module))

        def get_metrics(self, trainer: Any, pl_module: Any) -> dict[str, Any]:
            items = super().get_metrics(trainer, pl_module)
            items.pop("v_num", None)
            live = pl_module.live_metrics() if trainer.training else {}
            return {**live, **items}

    return EpochProgressBar


# ---- the run ------------------------------------------------------------------------------
def _resolve_run(cfg: TrainConfig, resume: str | os.PathLike | None, kind: str,
                 extra_config: dict[str, Any] | None, epochs: int | None = None) -> tuple[RunDir, TrainConfig, Path | None]:
    if resume is not None:
        run = RunDir.open(resume)
        saved = TrainConfig.from_dict(run.config)
        # a resumed run keeps its recipe; only its length may change, when asked for explicitly
        if epochs is not None:
            done = len(run.metrics())
            if epochs < done:
                raise ConvlensError(f"--epochs {epochs}: {run.path} has already trained {done} epochs")
            saved.epochs = epochs
        saved.progress, saved.device = cfg.progress, cfg.device
        last = run.checkpoints_dir / "last.ckpt"
        return run, saved, (last if last.is_file() else None)
    dataset = Path(cfg.data).name if Path(cfg.data).is_dir() else cfg.data
    path = Path(cfg.out) / (cfg.name or default_run_name(f"{cfg.model}-{dataset}".replace("/", "_")))
    if epoch_checkpoints(path):
        raise ConvlensError(f"{path} already holds a run: continue it with --resume {path}, or choose another --name")
    run = RunDir.create(path, {**cfg.to_dict(), **(extra_config or {})}, kind=kind)
    return run, cfg, None


def _trainer_kwargs(cfg: TrainConfig, device: torch.device) -> dict[str, Any]:
    accel = {"cuda": "gpu", "mps": "mps"}.get(device.type, "cpu")
    precision = resolve_precision(cfg.precision, device)
    kw: dict[str, Any] = {"accelerator": accel, "precision": precision}
    if cfg.devices > 1:
        # DDP, not DataParallel: one process per device, gradients all-reduced
        kw.update(devices=cfg.devices, strategy="ddp")
    else:
        kw["devices"] = [device.index or 0] if device.type == "cuda" else 1
    return kw


def steps_per_loader_batch(batch_size: int, image_shape: tuple[int, ...]) -> int:
    """How many optimizer steps one loader batch carries.

    Small images (Fashion-MNIST, CIFAR): about 1,000 images (at most 16 steps) per Lightning
    batch, so its per-batch loop and hooks (~0.2 ms) are paid once per group; they were 13% of
    the chapter DNN's training. Larger images: one step per batch, where that overhead is
    nothing and the progress bar should move with every step.
    """
    if image_shape[-1] * image_shape[-2] > 64 * 64:
        return 1
    return max(1, min(16, 1000 // max(1, batch_size)))


def _final_evaluation(module: ClassifierModule, test: ImageTensors, history: list[dict[str, Any]]) -> Any:
    """The last epoch's test predictions as an :class:`Evaluation`, when they cover the whole
    test split in order (one process): the same numbers a second pass would give, for free."""
    from .evaluate import Evaluation

    if not module.final_test_probs or not history or "test_loss" not in history[-1]:
        return None
    probs = torch.cat(module.final_test_probs)
    if len(probs) != len(test):
        return None
    preds = probs.argmax(1)
    return Evaluation(float(history[-1]["test_loss"]), (preds == test.labels).sum().item() / len(test), preds, test.labels.clone(), probs)


def train(cfg: TrainConfig, model: nn.Module | None = None, data: DatasetSplits | None = None,
          param_groups: ParamGroupsFn | None = None, kind: str = "train", extra_config: dict[str, Any] | None = None,
          resume: str | os.PathLike | None = None, report: bool = True, epochs: int | None = None) -> TrainResult:
    """Train an image classifier and write a complete run folder.

    Args:
        cfg: the recipe (:class:`TrainConfig`).
        model: train this module instead of ``create_model(cfg.model)``; it must carry
            ``pretrained_cfg`` (mean/std) and ``convlens_name`` to be rebuilt later.
        data: use these splits instead of ``load_dataset(cfg.data)``.
        param_groups: ``fn(model, lr) -> [param group dicts]`` (e.g. a backbone at lr/10).
        resume: a run folder to continue from its last complete epoch, with its own recipe.
        epochs: with ``resume``, train up to this many epochs in all (default: the run's own).
        report: write plots and ``report.html`` at the end.
    """
    import lightning as L
    from lightning.pytorch.loggers import CSVLogger
    from lightning.pytorch.trainer.states import TrainerStatus

    t0 = time.perf_counter()
    tune_allocator()
    quiet_lightning()
    run, cfg, ckpt_path = _resolve_run(cfg, resume, kind, extra_config, epochs)
    set_threads(cfg.threads or max(1, (os.cpu_count() or 1) // cfg.devices))
    device = select_device(cfg.device)
    skip_nvml_probe_without_cuda()
    seed_everything(cfg.seed)
    if model is None:
        from ..models import create_model

        model = create_model(cfg.model, pretrained=cfg.pretrained, **cfg.model_kwargs)
    splits = prepare_data(run.config if resume is not None else cfg.to_dict(), model, data=data)
    classes = splits["classes"]
    if getattr(model, "num_classes", len(classes)) != len(classes):
        model.reset_classifier(len(classes))
    model_kwargs = dict(cfg.model_kwargs)
    meta = model_meta(model, getattr(model, "convlens_name", cfg.model), classes, model_kwargs)
    if ckpt_path is not None:
        done = read_checkpoint(ckpt_path)
        load_state_dict_checked(model, done["state_dict"], str(ckpt_path), meta["model_name"])
        run.truncate_metrics(int(done.get("epoch", -1)) + 1)

    eval_names = [n for n in ("val", "test") if len(splits[n])]
    module = ClassifierModule(model, cfg, meta, eval_names, param_groups)
    if cfg.compile:
        from .compiled import compiled_forward

        object.__setattr__(module, "train_forward", compiled_forward(module.model))
    recorder = _recorder_class()(run, has_val=len(splits["val"]) > 0, n_train=len(splits["train"]))
    callbacks: list[Any] = [recorder]
    group = steps_per_loader_batch(cfg.batch_size, tuple(splits["train"].images.shape))
    if cfg.progress:
        callbacks.append(_progress_bar_class()(refresh_rate=max(1, 10 // group)))
    deterministic = True if device.type == "cpu" else "warn"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        # frozen BatchNorm is put in eval mode on purpose (freeze_bn_of_frozen_layers)
        warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")
        # a resumed run logs to a new folder: Lightning's CSV writer would replace the old file
        log_version = "lightning_logs" if ckpt_path is None else f"lightning_logs-resumed-{len(run.metrics())}"
        trainer = L.Trainer(max_epochs=cfg.epochs, logger=CSVLogger(run.path, name="", version=log_version),
                            callbacks=callbacks, enable_checkpointing=False, enable_progress_bar=cfg.progress,
                            enable_model_summary=False, num_sanity_val_steps=0, deterministic=deterministic,
                            use_distributed_sampler=False,
                            log_every_n_steps=max(1, min(50, len(splits['train']) // (cfg.batch_size * group))), default_root_dir=str(run.path),
                            **_trainer_kwargs(cfg, device))
        # a last batch of one image would go through BatchNorm in train mode (the chapter's 385 / 32)
        drop_last = len(splits["train"]) % cfg.batch_size == 1
        train_loader = tensor_loader(splits["train"], cfg.batch_size * group, shuffle=True, seed=cfg.seed)
        per_rank = -(-len(splits["train"]) // cfg.devices)  # each DDP rank's share (EpochSeededSampler pads evenly)
        module.micro_batch, module.drop_last = cfg.batch_size, drop_last
        module.steps_per_epoch = per_rank // cfg.batch_size if drop_last else -(-per_rank // cfg.batch_size)
        eval_loaders = [tensor_loader(splits[n], cfg.eval_batch_size, shuffle=False) for n in eval_names]
        old_sigint = signal.getsignal(signal.SIGINT)
        try:
            trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=eval_loaders or None,
                        ckpt_path=str(ckpt_path) if ckpt_path else None, weights_only=True)
        except SystemExit:
            if trainer.state.status != TrainerStatus.INTERRUPTED:
                raise
        finally:
            signal.signal(signal.SIGINT, old_sigint)
        if trainer.state.status == TrainerStatus.INTERRUPTED:
            done = len(run.metrics())
            raise TrainingInterrupted(f"interrupted during epoch {done + 1}; epochs 1-{done} are saved in {run.path}: "
                                      f"continue with `convlens train --resume {run.path}`")
    if not trainer.is_global_zero:
        return TrainResult(run, model, run.metrics(), float("nan"), 0, meta, time.perf_counter() - t0)

    history = run.metrics()
    best_epoch = recorder.best_epoch or (history[-1]["epoch"] if history else 0)
    from .evaluate import evaluate_model

    model.eval()
    final = _final_evaluation(module, splits["test"], history)
    if final is None:
        final = evaluate_model(model, splits["test"], cfg.eval_batch_size, device, precision=resolve_precision(cfg.precision, device))
    seconds = time.perf_counter() - t0
    summary = {"test_acc": final.acc, "test_loss": final.loss, "best_epoch": best_epoch,
               "best_by": "val_acc" if len(splits["val"]) else "last epoch (no validation split)",
               "epochs": len(history), "train_images": len(splits["train"]), "val_images": len(splits["val"]),
               "test_images": len(splits["test"]), "params": sum(p.numel() for p in model.parameters()),
               "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
               "train_seconds": round(sum(r.get("seconds", 0) for r in history), 2), "total_seconds": round(seconds, 2),
               "precision": resolve_precision(cfg.precision, device)}
    if history and "val_acc" in history[0]:
        summary["test_acc_at_best_epoch"] = next(r.get("test_acc") for r in history if r["epoch"] == best_epoch)
    run.write_summary(summary)
    figures: dict[str, Path] = {}
    if report:
        from .report import write_run_report

        figures = write_run_report(run, model, splits, final, history, meta, summary)
    return TrainResult(run, model, history, final.acc, best_epoch, meta, seconds, figures)
