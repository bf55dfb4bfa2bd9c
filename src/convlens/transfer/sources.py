"""Where a transfer run's images come from: files in a folder, or a named data set in memory.

Splits are cut exactly as the engine cuts them (``limit_train`` then a stratified validation
split of ``val_size`` images, both seeded), so ``convlens evaluate`` on a transfer run sees the
same validation and test images.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from ..data.base import ImageTensors
from ..data.folders import TEST_DIR_NAMES, Preprocess, _progress, class_files, holdout_indices, open_image
from ..data.prepare import fit_images
from ..errors import DataError


@dataclass
class Source:
    """One split: ``items`` (list of file paths, or uint8 (N, C, H, W)), ``labels`` (N,)."""

    items: list[str] | torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def is_files(self) -> bool:
        return not isinstance(self.items, torch.Tensor)

    def native_px(self, sample: int = 8) -> int | None:
        """The larger side of the split's images (of the first ``sample`` files; None when unreadable)."""
        if not self.is_files:
            return max(self.items.shape[-2:]) if len(self.items) else None
        from PIL import Image

        sizes = []
        for path in self.items[:sample]:
            try:
                with Image.open(path) as im:  # the header only: no pixels decoded
                    sizes.append(max(im.size))
            except Exception:  # noqa: BLE001 - an unreadable file is skipped later, with its reason
                continue
        return max(sizes, default=None)

    def test_holdout(self, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``(keep, hold)``: the folder loader's stratified test holdout of these (readable) images,
        seed 0: the test set never moves with the training seed."""
        return holdout_indices(self.labels, len(self.classes), fraction, seed=0)

    def subset(self, index: torch.Tensor | Sequence[int]) -> "Source":
        index = torch.as_tensor(index, dtype=torch.int64)
        items = self.items[index] if not self.is_files else [self.items[i] for i in index.tolist()]
        return Source(items, self.labels[index], self.classes, self.name, list(self.skipped))

    def images(self, index: torch.Tensor | Sequence[int], preprocess: Preprocess, progress: bool = False) -> torch.Tensor:
        """uint8 (n, C, H, W) of the chosen items at the backbone's input size (decoded now)."""
        index = torch.as_tensor(index, dtype=torch.int64).tolist()
        if not index:
            return torch.zeros(0, preprocess.channels, preprocess.image_size, preprocess.image_size, dtype=torch.uint8)
        if self.is_files:
            tf = preprocess.transform()
            files = _progress([self.items[i] for i in index], progress, f"decoding {self.name}")
            return torch.stack([tf(open_image(p, preprocess.channels)) for p in files])
        return fit_images(self.items[index], preprocess.channels, preprocess.image_size)

    def to_tensors(self, preprocess: Preprocess, progress: bool = True) -> ImageTensors:
        """Every image decoded (for fine-tuning, which needs pixels, not features)."""
        return ImageTensors(self.images(range(len(self)), preprocess, progress), self.labels.clone(), self.classes, self.name, "",
                            list(self.items) if self.is_files else None)


class LazyTestImages:
    """Looks like ``ImageTensors`` to the engine's report: ``len()`` and ``.images[idx]``,
    decoding only the images a figure actually shows."""

    def __init__(self, source: Source, preprocess: Preprocess):
        self.source, self.preprocess = source, preprocess
        self.labels = source.labels
        self.classes = source.classes
        self.name = source.name

    def __len__(self) -> int:
        return len(self.source)

    @property
    def images(self) -> "LazyTestImages":
        return self

    def __getitem__(self, index: Any) -> torch.Tensor:
        return self.source.images(index, self.preprocess)


def _files_of(folder: Path, classes: list[str] | None = None) -> tuple[list[str], torch.Tensor, list[str], list[str], list[str]]:
    found, files, skipped, warns = class_files(folder, classes)
    return [str(p) for p, _ in files], torch.tensor([y for _, y in files], dtype=torch.int64), found, [str(s) for s in skipped], warns


def folder_sources(path: str | os.PathLike, test_fraction: float = 0.2) -> tuple[Source, Source | None, list[str]]:
    """(train, test or None = hold out later, warnings) for ``path/train`` + ``path/test``
    (``val``/``validation`` accepted) or a single folder of classes."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"--data {path}: no such folder or data set name")
    test_dir = next((root / n for n in TEST_DIR_NAMES if (root / n).is_dir()), None)
    train_dir = root / "train" if (root / "train").is_dir() else root
    items, labels, classes, skipped, warns = _files_of(train_dir)
    train = Source(items, labels, classes, f"{root.name}-train", skipped)
    if train_dir is root or test_dir is None:
        return train, None, warns
    t_items, t_labels, _, t_skipped, t_warns = _files_of(test_dir, classes)
    return train, Source(t_items, t_labels, classes, f"{root.name}-test", t_skipped), warns + t_warns


def named_sources(name: str, data_dir: str | None = None) -> tuple[Source, Source]:
    """A registered data set (``fashion-mnist``) as in-memory sources."""
    from ..data.registry import load_dataset

    splits = load_dataset(name, data_dir=data_dir)
    return (Source(splits.train.images, splits.train.labels, splits.classes, splits.train.name or f"{name}-train"),
            Source(splits.test.images, splits.test.labels, splits.classes, splits.test.name or f"{name}-test"))
