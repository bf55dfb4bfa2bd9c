"""Data sets by name: ``load_dataset("fashion-mnist")``, or a path to an image folder."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import DataError
from .base import ImageTensors


@dataclass
class DatasetSplits:
    """``train`` and ``test`` (and the ``val`` carved from train by the engine)."""

    train: ImageTensors
    test: ImageTensors
    name: str

    @property
    def classes(self) -> list[str]:
        return self.train.classes


_loaders: dict[str, Callable[..., DatasetSplits]] = {}


def register_dataset(name: str) -> Callable[[Callable[..., DatasetSplits]], Callable[..., DatasetSplits]]:
    def deco(fn: Callable[..., DatasetSplits]) -> Callable[..., DatasetSplits]:
        _loaders[name] = fn
        return fn

    return deco


def list_datasets() -> list[str]:
    return sorted(_loaders)


@register_dataset("fashion-mnist")
def _fashion(data_dir: str | None = None, download: bool = False, **_: Any) -> DatasetSplits:
    from .fashion_mnist import load_fashion_mnist

    return DatasetSplits(load_fashion_mnist("train", data_dir, download), load_fashion_mnist("test", data_dir, download), "fashion-mnist")


@register_dataset("cifar10")
def _cifar10(data_dir: str | None = None, download: bool = False, **_: Any) -> DatasetSplits:
    from .cifar10 import load_cifar10

    s = load_cifar10(data_dir, download)
    return DatasetSplits(s["train"], s["test"], "cifar10")


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, **kwargs: Any) -> DatasetSplits:
    """A registered name (``list_datasets()``) or a folder of class sub-folders.

    Folders are read by :func:`convlens.data.folders.load_image_folder` (``train/`` + ``test/``
    sub-folders, or one folder split with a seeded holdout); ``kwargs`` go to the loader
    (e.g. ``image_size``).
    """
    key = name.lower().replace("_", "-")
    if key in ("fashionmnist", "fmnist"):
        key = "fashion-mnist"
    if key in ("cifar-10", "cifar"):
        key = "cifar10"
    if key in _loaders:
        return _loaders[key](data_dir=data_dir, **kwargs)
    if Path(name).is_dir():
        from .folders import load_image_folder_splits

        return load_image_folder_splits(name, **kwargs)
    raise DataError(f"unknown data set {name!r}: known are {', '.join(list_datasets())}, or give a folder path with one sub-folder per class")
