"""``train()``: one function behind ``convlens train``, ``compare`` and the fine-tuning of
``transfer``. Lightning runs the loop; this file decides what a run records. What differs from
the chapter's loop, and why: docs/first-cnn.md ("Where the chapter's code is wrong").
"""
from __future__ import annotations

import os
import signal
import time
import warnings
from pathlib import Path
from typing import Any, Iterable

import torch
import torch.nn as nn

from .._runtime import (flush_denormals, resolve_precision, seed_everything, select_device, set_threads,
                        skip_nvml_probe_without_cuda, tune_allocator)
from ..data.base import ImageTensors, tensor_loader
from ..data.folders import skipped_once
from ..data.prepare import notice, prepare_data
from ..data.registry import DatasetSplits
from ..errors import ConvlensError
from ..events import Listener
from ..runs import RunDir, RunRecorder, RunResult, default_run_name
from . import distributed  # ddp: launch detection, device checks, rank-0-only files (engine/distributed.py)
from .checkpoint import epoch_checkpoints, load_state_dict_checked, model_meta, read_checkpoint
from .config import TrainConfig
from .evaluate import Evaluation, evaluate_model
from .guards import DivergenceGuard
from .module import ClassifierModule, ParamGroupsFn


class TrainingInterrupted(ConvlensError):
    """Ctrl-C or a signal stopped training; the last complete epoch is saved."""


TrainResult = RunResult  # the name before every verb returned one RunResult


def _lightning_recorder(recorder: RunRecorder, n_train: int):
    """The Lightning side of :class:`~convlens.runs.RunRecorder`: step events from the loop,
    and after each epoch's evaluation the row and Lightning's full (resumable) checkpoint,
    which the recorder writes through the run's one checkpoint writer."""
    import lightning as L
    from lightning.pytorch.plugins.io import TorchCheckpointIO

    class CaptureIO(TorchCheckpointIO):
        """``trainer.save_checkpoint`` hands its dict here (rank 0): no file through Lightning."""

        taken: dict[str, Any] | None = None

        def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
            self.taken = checkpoint

    class EpochRecorder(L.Callback):
        def __init__(self) -> None:
            self.io = CaptureIO()
            self._next_step = 0.0

        def on_train_epoch_start(self, trainer: "L.Trainer", pl_module: ClassifierModule) -> None:
            if trainer.is_global_zero:
                recorder.epoch_start(trainer.current_epoch + 1, pl_module.steps_per_epoch)

        def on_train_batch_end(self, trainer: "L.Trainer", pl_module: ClassifierModule, *args: Any) -> None:
            now = time.perf_counter()
            if trainer.is_global_zero and now >= self._next_step:  # a few a second: float(loss) syncs a GPU
                self._next_step = now + 0.2
                recorder.step(trainer.current_epoch + 1, pl_module.epoch_steps, pl_module.steps_per_epoch, pl_module.live_metrics())

        def on_validation_end(self, trainer: "L.Trainer", pl_module: ClassifierModule) -> None:
            if trainer.sanity_checking:
                return
            epoch = trainer.current_epoch + 1
            secs = pl_module._train_seconds
            row = {"epoch": epoch, **pl_module.epoch_metrics(), "lr": trainer.optimizers[0].param_groups[0]["lr"],
                   "seconds": round(secs, 3), "images_per_s": round(n_train / secs, 1) if secs > 0 else None}
            self.io.taken = None
            trainer.save_checkpoint(recorder.run.checkpoints_dir / f"epoch={epoch:03d}.ckpt", weights_only=False)  # collective
            if trainer.is_global_zero:
                recorder.end_epoch(row, self.io.taken)
            self.io.taken = None

    return EpochRecorder()


def quiet_lightning() -> None:
    """Lightning's start-up chatter (GPU/TPU availability, tips) buries the progress bar."""
    import logging

    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                 "lightning.pytorch.trainer.connectors.checkpoint_connector"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _resolve_run(cfg: TrainConfig, resume: str | os.PathLike | None, kind: str,
                 extra_config: dict[str, Any] | None, epochs: int | None = None,
                 rank_zero: bool = True) -> tuple[RunDir, TrainConfig, Path | None]:
    if resume is not None:
        run = RunDir.open(resume, resume=True)
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
    path = Path(cfg.out) / (cfg.name or default_run_name(cfg.model, cfg.data))
    if not rank_zero:  # ddp: only rank 0 makes the folder; the others learn its path at the end
        return RunDir(path), cfg, None
    if epoch_checkpoints(path):
        raise ConvlensError(f"{path} already holds a run: continue it with --resume {path}, or choose another --name")
    return RunDir.create(path, {**cfg.to_dict(), **(extra_config or {})}, kind=kind), cfg, None


def steps_per_loader_batch(batch_size: int, image_shape: tuple[int, ...]) -> int:
    """How many optimizer steps one loader batch carries. Small images (Fashion-MNIST, CIFAR): about
    1,000 images (at most 16 steps) per Lightning batch, so its per-batch loop and hooks (~0.2 ms) are
    paid once per group; they were 13% of the chapter DNN's training. Larger images: one step per
    batch, where that overhead is nothing and the progress bar should move with every step."""
    if image_shape[-1] * image_shape[-2] > 64 * 64:
        return 1
    return max(1, min(16, 1000 // max(1, batch_size)))


def _final_evaluation(module: ClassifierModule, test: ImageTensors, history: list[dict[str, Any]]) -> Any:
    """The last epoch's test predictions as an :class:`Evaluation`, when they cover the whole
    test split in order (one process): the same numbers a second pass would give, for free."""
    if not module.final_test_probs or not history or "test_loss" not in history[-1]:
        return None
    probs = torch.cat(module.final_test_probs)
    if len(probs) != len(test):
        return None
    preds = probs.argmax(1)
    return Evaluation(float(history[-1]["test_loss"]), (preds == test.labels).sum().item() / len(test), preds, test.labels.clone(), probs)


def train(cfg: TrainConfig, model: nn.Module | None = None, data: DatasetSplits | None = None,
          param_groups: ParamGroupsFn | None = None, kind: str = "train", extra_config: dict[str, Any] | None = None,
          resume: str | os.PathLike | None = None, report: bool = True, epochs: int | None = None,
          listeners: Iterable[Listener] = (), summary_extra: dict[str, Any] | None = None,
          notes: list[str] | None = None, title: str | None = None) -> RunResult:
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
        listeners: progress listeners (:mod:`convlens.events`); the tqdm bar is added when
            ``cfg.progress``, ``events.jsonl`` always.
        summary_extra, notes, title: what a calling verb adds to ``summary.json`` and the
            report (``transfer``), so the report, written last, shows it.
    """
    import lightning as L
    from lightning.pytorch.trainer.states import TrainerStatus

    from .recipes import resolve_recipe

    t0 = time.perf_counter()
    tune_allocator()
    quiet_lightning()
    # ddp: refuse --devices beyond this machine, then learn this process's rank (engine/distributed.py)
    launch = distributed.detect_launch(cfg.devices, cfg.num_nodes)
    distributed.check_devices(launch.devices, cfg.device, launch.num_nodes)
    run, cfg, ckpt_path = _resolve_run(cfg, resume, kind, extra_config, epochs, rank_zero=launch.is_zero)
    threads = distributed.threads_per_rank(launch.devices, cfg.threads)
    set_threads(threads)
    distributed.pin_threads(launch, threads)
    device = select_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    skip_nvml_probe_without_cuda()
    seed_everything(cfg.seed)
    config = run.config if resume is not None else cfg.to_dict()
    if model is None and cfg.pretrained:  # pretrained weights keep their input; the data are fitted to it
        from ..models import create_model

        model = create_model(cfg.model, pretrained=True, **cfg.model_kwargs)
    elif model is None:  # from scratch: the data set's channels, size, mean, std and classes shape the model
        from ..data.prepare import load_run_data
        from ..models.registry import create_model_for_data

        data = data or load_run_data(config)
        model = create_model_for_data(cfg.model, {**data.data_config(), "name": data.name}, **cfg.model_kwargs)
    splits = prepare_data(config, model, data=data, log=notice)
    classes = splits["classes"]
    if getattr(model, "num_classes", len(classes)) != len(classes):
        model.reset_classifier(len(classes))
    meta = model_meta(model, getattr(model, "convlens_name", cfg.model), classes,
                      getattr(model, "convlens_kwargs", None) or dict(cfg.model_kwargs))
    if ckpt_path is not None:
        done = read_checkpoint(ckpt_path)
        load_state_dict_checked(model, done["state_dict"], str(ckpt_path), meta["model_name"])
        if launch.is_zero:  # ddp: rank 0 alone writes the run folder
            run.truncate_metrics(int(done.get("epoch", -1)) + 1)
    if cfg.progress and launch.is_zero:
        from ..reports.progress import TqdmBar

        listeners = [*listeners, TqdmBar()]
    recorder = RunRecorder(run, "val_acc" if len(splits["val"]) else "last", listeners)
    recipe = resolve_recipe(cfg.recipe, cfg.model)
    if recipe is not None and recipe.prepare is not None and ckpt_path is None:
        recipe.prepare(model, splits["train"])  # e.g. a first layer set from the data (the fast recipe's whitening)
    eval_names = [n for n in ("val", "test") if len(splits[n])]
    module = ClassifierModule(model, cfg, meta, eval_names, param_groups)
    epoch_recorder = _lightning_recorder(recorder, len(splits["train"]))
    recipe_callbacks = recipe.callbacks(cfg) if recipe is not None and recipe.callbacks else []
    if cfg.compile:
        from .compiled import compiled_forward

        object.__setattr__(module, "train_forward", compiled_forward(module.model))
    group = steps_per_loader_batch(cfg.batch_size, tuple(splits["train"].images.shape))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        # frozen BatchNorm is put in eval mode on purpose (freeze_bn_of_frozen_layers)
        warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")
        # ddp: the module logs metrics it has already all-reduced itself (ClassifierModule.epoch_metrics)
        warnings.filterwarnings("ignore", message=".*sync_dist=True.*")
        # no Lightning logger: the run recorder's metrics.jsonl and events.jsonl are the one record;
        # the divergence guard comes first: it vets an epoch before the recorder saves it
        trainer = L.Trainer(max_epochs=cfg.epochs, logger=False,
                            callbacks=[DivergenceGuard(cfg.lr), epoch_recorder, *recipe_callbacks], plugins=[epoch_recorder.io],
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                            num_sanity_val_steps=0, use_distributed_sampler=False, default_root_dir=str(run.path),
                            deterministic=True if device.type == "cpu" else "warn", precision=precision,
                            accelerator={"cuda": "gpu", "mps": "mps"}.get(device.type, "cpu"),
                            # DDP, not DataParallel, when launch.world_size > 1 (engine/distributed.py)
                            **distributed.trainer_kwargs(launch, [device.index or 0] if device.type == "cuda" else 1))
        # a last batch of one image would go through BatchNorm in train mode (the chapter's 385 / 32)
        drop_last = len(splits["train"]) % cfg.batch_size == 1
        train_loader = tensor_loader(splits["train"], cfg.batch_size * group, shuffle=True, seed=cfg.seed)
        per_rank = -(-len(splits["train"]) // launch.world_size)  # each DDP rank's share (EpochSeededSampler pads evenly)
        module.micro_batch, module.drop_last = cfg.batch_size, drop_last
        module.eval_sizes = {n: len(splits[n]) for n in eval_names}  # ddp: to leave the sampler's padding out
        module.steps_per_epoch = per_rank // cfg.batch_size if drop_last else -(-per_rank // cfg.batch_size)
        eval_loaders = [tensor_loader(splits[n], cfg.eval_batch_size, shuffle=False) for n in eval_names]
        old_sigint = signal.getsignal(signal.SIGINT)
        if trainer.is_global_zero:
            recorder.start(cfg.epochs, f"{meta['model_name']} on {splits['name']}: {len(splits['train']):,} training images")
        try:
            with flush_denormals(cfg.flush_denormals and device.type == "cpu"):  # per thread: set on torch's workers too
                trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=eval_loaders or None,
                            ckpt_path=str(ckpt_path) if ckpt_path else None, weights_only=True)
        except SystemExit:
            if trainer.state.status != TrainerStatus.INTERRUPTED:
                raise
        except BaseException as exc:
            if trainer.is_global_zero:
                recorder.fail(exc)
            raise
        finally:
            signal.signal(signal.SIGINT, old_sigint)
        if trainer.state.status == TrainerStatus.INTERRUPTED:
            done = len(run.metrics())
            if trainer.is_global_zero:
                recorder.fail(KeyboardInterrupt(f"interrupted during epoch {done + 1}"))
            raise TrainingInterrupted(f"interrupted during epoch {done + 1}; epochs 1-{done} are saved in {run.path}: "
                                      f"continue with `convlens train --resume {run.path}`")
    # ddp: every rank's last test predictions, back in test order (a collective)
    gathered = distributed.gather_in_order(trainer, module.final_test_probs, len(splits["test"]))
    module.final_test_probs = [gathered] if gathered is not None else []
    if not trainer.is_global_zero:  # ddp: rank 0 writes the files and tells the others the result
        got = distributed.share_result(trainer, None)
        return RunResult(RunDir(got["run"]), got["history"], got["summary"], model_=model, meta=meta)

    history = run.metrics()
    model.eval()
    final = _final_evaluation(module, splits["test"], history)
    if final is None:
        final = evaluate_model(model, splits["test"], cfg.eval_batch_size, device, precision=precision)
    summary = {"test_acc": final.acc, "test_loss": final.loss,
               "epochs": len(history), "train_images": len(splits["train"]), "val_images": len(splits["val"]),
               "test_images": len(splits["test"]), "params": sum(p.numel() for p in model.parameters()),
               "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
               "train_seconds": round(sum(r.get("seconds", 0) for r in history), 2),
               "precision": precision}
    if skipped := skipped_once(*(splits[n].meta.get("skipped", []) for n in ("train", "test"))):
        summary["skipped_files"] = skipped  # every one; the terminal and the report name the first few
    if history and "val_acc" in history[0]:
        summary["test_acc_at_best_epoch"] = next((r.get("test_acc") for r in history if r["epoch"] == recorder.best_epoch), None)
    summary.update(summary_extra or {})
    summary["total_seconds"] = round(time.perf_counter() - t0, 2)

    def write_report(s: dict[str, Any]) -> dict[str, Path]:
        from .report import write_run_report

        return write_run_report(run, splits["test"], final, history, meta["classes"], s, title=title or
                                f"{meta['model_name']} on {splits['name']}", notes=notes)

    shared = {**summary, "best_epoch": recorder.best_epoch, "best_by": recorder.best_by.metric}
    distributed.share_result(trainer, {"run": str(run.path), "history": history, "summary": shared})
    res = recorder.finish(summary, write_report if report else None, model=model)
    res.meta = meta
    return res

