"""Data preparation every verb shares: seeded limits, the stratified validation split, and
images fitted to a model's input spec. ``train``, ``transfer``, ``evaluate`` and ``explain``
all cut a run's data here, so a run reopened by any of them sees the same images.
"""
from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..errors import ConvlensError, DataError, DataWarning
from .base import ImageTensors


def seeded_limit(n_total: int, n: int | None, seed: int) -> torch.Tensor:
    """Indices of ``--limit-train/--limit-test``: the first ``n`` of a randperm seeded by
    ``seed + 7``, sorted (all of ``range(n_total)`` when ``n`` is None or too large)."""
    if n is None or n >= n_total:
        return torch.arange(n_total)
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed + 7))[:n].sort().values


def limit(split: ImageTensors, n: int | None, seed: int) -> ImageTensors:
    """``split`` cut to :func:`seeded_limit` (the same object when nothing is cut)."""
    return split if n is None or n >= len(split) else split.subset(seeded_limit(len(split), n, seed))


def stratified_split(labels: torch.Tensor, num_classes: int, n_holdout: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded, class-stratified ``(keep, hold)`` indices with exactly ``n_holdout`` held out (the
    validation split). Class ``c`` with ``n_c`` of ``N`` images gives ``floor(n_holdout * n_c / N)``
    places; the largest remainders take the leftover places."""
    if n_holdout <= 0:
        return torch.arange(len(labels)), torch.zeros(0, dtype=torch.int64)
    counts = torch.bincount(labels, minlength=num_classes).double()
    share = counts * (n_holdout / len(labels))
    quota = share.floor().long()
    quota[(share - quota).argsort(descending=True)[:n_holdout - int(quota.sum())]] += 1
    return hold_per_class(labels, quota.tolist(), seed)


def holdout_indices(labels: torch.Tensor, num_classes: int, fraction: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded, class-stratified ``(keep, hold)`` indices holding out ``round(fraction * n_c)`` of
    each class (a test split cut from a folder without ``test/``): at least one of every class
    with >= 2 images, never a class's last one, so every class is both trained and tested."""
    counts = torch.bincount(labels, minlength=num_classes).tolist()
    quota = [0 if n < 2 or fraction <= 0 else min(n - 1, max(1, int(round(fraction * n)))) for n in counts]
    return hold_per_class(labels, quota, seed)


def hold_per_class(labels: torch.Tensor, quota: Sequence[int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The one stratified selection under both quota rules above: ``quota[c]`` images of class
    ``c``, the first of a randperm per class from one generator seeded by ``seed``; ``hold``
    sorted, ``keep`` in index order."""
    g = torch.Generator().manual_seed(seed)
    held = [idx[torch.randperm(len(idx), generator=g)][:k]
            for c, k in enumerate(quota) for idx in [(labels == c).nonzero().flatten()]]
    hold = torch.cat(held).sort().values if held else torch.zeros(0, dtype=torch.int64)
    mask = torch.ones(len(labels), dtype=torch.bool)
    mask[hold] = False
    return mask.nonzero().flatten(), hold


def fit_images(x: torch.Tensor, channels: int, size: tuple[int, int] | int, what: str = "images") -> torch.Tensor:
    """uint8 ``(B, c, h, w)`` -> ``(B, channels, H, W)``: grey -> RGB by repetition, RGB -> grey
    by ITU-R BT.601 luma (PIL's ``convert("L")``), resized bilinearly with antialiasing."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if x.shape[1] != channels:
        if x.shape[1] == 1:
            x = x.expand(-1, channels, -1, -1)
        elif x.shape[1] == 3 and channels == 1:
            luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            x = (x.float() * luma).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
        else:
            raise ConvlensError(f"{what} have {x.shape[1]} channels, the model expects {channels}")
    if tuple(x.shape[-2:]) != size:
        if len(x) * channels * size[0] * size[1] > 4e9:
            raise ConvlensError(f"resizing {len(x):,} {what} to {size[0]}x{size[1]} needs over 4 GB: use --limit-train/--limit-test")
        x = torch.cat([F.interpolate(x[i:i + 512].float(), size=size, mode="bilinear", antialias=True, align_corners=False)
                       .round().clamp(0, 255).to(torch.uint8) for i in range(0, len(x), 512)]) if len(x) else \
            x.new_zeros((0, channels, *size))
    return x.contiguous()


def fit_to_input(split: ImageTensors, input_size: tuple[int, ...] | None) -> ImageTensors:
    """``split`` with the channels and size of ``input_size`` (C, H, W); itself when they match."""
    if not input_size or len(input_size) != 3 or tuple(split.images.shape[1:]) == tuple(input_size):
        return split
    x = fit_images(split.images, int(input_size[0]), tuple(input_size[1:]), what=f"images of {split.name or 'the data'}")
    return ImageTensors(x, split.labels, split.classes, split.name, split.source, split.paths, dict(split.meta))


def notice(msg: str) -> None:
    """The default ``log`` of the data and training verbs: one line on stderr."""
    print(msg, file=sys.stderr)


def load_run_data(config: dict[str, Any], pretrained_cfg: dict[str, Any] | None = None) -> Any:
    """The :class:`~convlens.data.registry.DatasetSplits` a run's ``config`` names. Folders are
    read at the model's input (``pretrained_cfg``) or, with none yet, at their own size and colour."""
    from .registry import list_datasets, load_dataset

    name = config["data"]
    kwargs: dict[str, Any] = {"data_dir": config.get("data_dir")}
    if name.lower() in list_datasets():
        kwargs["download"] = config.get("download", False)
    elif pretrained_cfg:
        kwargs["pretrained_cfg"] = pretrained_cfg
    else:
        kwargs["image_size"] = "native"
    return load_dataset(name, **kwargs)


def prepare_data(config: dict[str, Any], model: Any, meta: dict[str, Any] | None = None, data: Any = None,
                 log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Load (or take) the data named in ``config`` and cut it into train / val / test (val:
    :func:`stratified_split`, seeded by ``config["seed"]``), fitted to the model's
    ``pretrained_cfg["input_size"]`` (one line on ``log`` when that changes the images' channels or size)."""
    pcfg = {**(getattr(model, "pretrained_cfg", {}) or {}), **((meta or {}).get("pretrained_cfg") or {})}
    data = data if data is not None else load_run_data(config, pcfg)
    require_two_classes(data.classes, str(config.get("data")))
    seed = int(config.get("seed", 0))
    train = limit(data.train, config.get("limit_train"), seed)
    test = limit(data.test, config.get("limit_test"), seed)
    val_size = int(config.get("val_size", 0))
    if val_size >= len(train):
        raise ConvlensError(f"--val-size {val_size}: the training split has only {len(train)} images")
    train, val = train.split(val_size, seed=seed)
    warn_missing_classes(test.labels, data.classes, "test")
    want = tuple(pcfg.get("input_size") or ())
    have = tuple(train.images.shape[1:])
    if want and have != want and log is not None:
        log(f"note: images of {data.name} are {have[0]}x{have[1]}x{have[2]} (C x H x W); fitted to the model's input "
            f"{want[0]}x{want[1]}x{want[2]}")
    return {"train": fit_to_input(train, want), "val": fit_to_input(val, want), "test": fit_to_input(test, want),
            "classes": data.classes, "name": data.name}


def require_two_classes(classes: Sequence[Any], source: str) -> None:
    """Refuse a classification data set with fewer than two classes, in one line."""
    if len(classes) < 2:
        found = f"only {list(classes)!r}" if classes else "none"
        raise DataError(f"{source}: a classifier needs at least two classes, found {found}; "
                        "give a folder with one sub-folder per class (at least two)")


def warn_missing_classes(labels: torch.Tensor, classes: Sequence[Any], split: str = "test") -> list[Any]:
    """Warn (and return them) when ``labels`` never use some of ``classes``: that split cannot
    measure accuracy on them, and 'overall accuracy' then means less than it says."""
    if len(labels) == 0:
        return []
    present = set(torch.as_tensor(labels).unique().tolist())
    if missing := [c for i, c in enumerate(classes) if i not in present]:
        warnings.warn(f"the {split} split has no images of {len(missing)} of {len(classes)} classes "
                      f"({', '.join(map(str, missing[:5]))}{'...' if len(missing) > 5 else ''}): its accuracy says nothing about them",
                      DataWarning, stacklevel=2)
    return missing
