"""``--strategy auto`` when it decides to fine-tune: weigh the gain against the time, and never
end below its own linear probe (docs/speed.md, section 4, has the recorded run).

1. **Probe**: exactly the ``--strategy feature-extract`` run (its head trains at least
   :data:`PROBE_EPOCHS`), a full run folder ``<name>-probe``: the result fine-tuning has to beat.
2. **Expected cost**, printed first: ``epochs x (train + (val + test) / 3) / images_per_s``, with
   images/s from one timed training step (evaluation is about a third of a training step).
3. **LP-FT** (Kumar et al., ICLR 2022): fine-tuning starts from the probe's head.
4. **Keep the better** on the same validation images; both runs go to ``summary["auto_outcome"]``.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: Epochs of the probe's head on cached features (feature extraction's default: seconds).
PROBE_EPOCHS = 13

#: What is said about a GPU: not measured here, so a range and a pointer, not a figure.
GPU_NOTE = ("on a CUDA GPU (--device cuda, 16-mixed precision) a training step of this size is typically "
            "one to two orders of magnitude faster than on this CPU (not measured here)")


def train_images_per_s(model: nn.Module, images: torch.Tensor, mean: Any, std: Any, steps: int = 2) -> float:
    """Images/s of a full training step (forward, backward of every layer, SGD update) of a copy
    of ``model`` on ``images`` (uint8 (B, C, H, W)); the first step is a warm-up, the best of the
    rest counts. The copy keeps the real model's weights and BatchNorm statistics untouched."""
    from ..engine.preprocess import normalise

    net = copy.deepcopy(model).train().to(memory_format=torch.channels_last)
    for p in net.parameters():
        p.requires_grad_(True)
    opt = torch.optim.SGD(net.parameters(), lr=1e-9)
    x = normalise(images, mean, std).contiguous(memory_format=torch.channels_last)
    y = torch.zeros(len(x), dtype=torch.long)
    best = float("inf")
    for i in range(steps):
        t0 = time.perf_counter()
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i or steps == 1:
            best = min(best, time.perf_counter() - t0)
    return len(x) / best


def expected_fine_tune_seconds(images_per_s: float, epochs: int, n_train: int, n_val: int, n_test: int) -> float:
    """``epochs x (n_train + (n_val + n_test) / 3) / images_per_s``: training steps plus one
    evaluation per epoch, a forward pass costing about a third of a training step."""
    return epochs * (n_train + (n_val + n_test) / 3) / images_per_s


def _best_val(history: list[dict[str, Any]], best_epoch: int) -> float | None:
    row = next((r for r in history if r.get("epoch") == best_epoch), history[-1] if history else {})
    return row.get("val_acc")


def probe_then_fine_tune(cfg: Any, backbone: Any, train_src: Any, test_src: Any, feats: dict[str, Any], unfreeze: int | None,
                         augment: str, decision: dict[str, Any], log: Callable[[str], None],
                         listeners: Iterable[Any] = ()) -> Any:
    """Steps 1-4 of the module docstring; returns the kept run's :class:`~convlens.runs.RunResult`."""
    from .config import default_name, val_size
    from .feature_extract import run_feature_extract
    from .fine_tune import run_fine_tune

    name = cfg.name or default_name(cfg)
    t0 = time.perf_counter()
    # the probe is exactly what --strategy feature-extract would give (same head, split, seed and
    # cached features; its head trains PROBE_EPOCHS on them whatever --epochs says for fine-tuning)
    probe = run_feature_extract(replace(cfg, name=f"{name}-probe", epochs=max(cfg.epochs, PROBE_EPOCHS)), backbone,
                                train_src, test_src, feats, decision, log, t0, listeners)
    probe_s = time.perf_counter() - t0 + feats.get("seconds", 0.0)
    probe_val = _best_val(probe.history, probe.best_epoch)
    log(f"auto: linear probe on the frozen features: val {_pct(probe_val)}, test {_pct(probe.test_acc)} "
        f"in {probe_s:.1f} s (features included) -> {probe.run.path}")

    n = min(8, len(train_src))
    sample = train_src.subset(torch.arange(n)).to_tensors(backbone.preprocess, False).images
    ips = train_images_per_s(backbone.model, sample, backbone.mean, backbone.std)
    n_val = val_size(len(train_src), cfg.val_fraction)
    expect = expected_fine_tune_seconds(ips, cfg.epochs, len(train_src) - n_val, n_val, len(test_src))
    log(f"auto: fine-tuning expected to take about {expect:.0f} s ({cfg.epochs} epochs of {len(train_src) - n_val} images "
        f"at {ips:.1f} training images/s, measured now on {n} images at "
        f"{backbone.preprocess.image_size} px; training and evaluation steps only, set-up and the report add more); {GPU_NOTE}")

    t1 = time.perf_counter()
    ft = run_fine_tune(replace(cfg, name=name, head_init="probe"), backbone, train_src, test_src, unfreeze, augment, decision,
                       log, feats, listeners)
    ft_s = time.perf_counter() - t1
    ft_val = _best_val(ft.history, ft.best_epoch)
    keep_ft = ft_val is not None and probe_val is not None and ft_val > probe_val
    kept, other = (ft, probe) if keep_ft else (probe, ft)
    outcome = {"probe_val_acc": probe_val, "probe_test_acc": probe.test_acc, "probe_seconds": round(probe_s, 2),
               "probe_run": str(probe.run.path), "fine_tune_val_acc": ft_val, "fine_tune_test_acc": ft.test_acc,
               "fine_tune_seconds": round(ft_s, 2), "fine_tune_expected_seconds": round(expect, 1),
               "fine_tune_run": str(ft.run.path), "train_images_per_s": round(ips, 2),
               "kept": "fine-tune" if keep_ft else "probe",
               "time_ratio": round(ft_s / max(probe_s, 1e-9), 1)}
    log(f"auto: linear probe val {_pct(probe_val)} / test {_pct(probe.test_acc)} in {probe_s:.1f} s; fine-tuning val "
        f"{_pct(ft_val)} / test {_pct(ft.test_acc)} in {ft_s:.1f} s (expected {expect:.0f} s; {outcome['time_ratio']}x the "
        f"probe's time) -> keeping the {'fine-tuned model' if keep_ft else 'probe (fine-tuning did not beat it on validation)'}: "
        f"{kept.run.path}")
    for res in (kept, other):
        res.amend(auto_outcome=outcome)
    return kept


def _pct(v: float | None) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{v:.1%}"
