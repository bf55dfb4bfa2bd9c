"""Data sets by name: ``load_dataset("fashion-mnist")``, or a path to an image folder."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import DataError
from .base import ImageTensors


@dataclass
class DatasetSplits:
    """``train`` and ``test`` (and the ``val`` carved from train by the engine).

    ``config``: what the data set knows about itself (e.g. Fashion-MNIST's published ``mean`` and
    ``std``); :meth:`data_config` completes it. A new data set plugs in at one place: a loader
    decorated with :func:`register_dataset` that returns ``DatasetSplits(train, test, name,
    config={...})``; models built from scratch then take their input from it.
    """

    train: ImageTensors
    test: ImageTensors
    name: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        return self.train.classes

    def data_config(self) -> dict[str, Any]:
        """``{"channels", "size": (H, W), "mean", "std", "classes"}``: what a model trained from
        scratch is built for. ``mean``/``std`` (per channel, pixels in [0, 1]) come from
        ``config`` or are measured on ``train``: E[x] and sqrt(E[x^2] - E[x]^2) over all pixels."""
        c, h, w = (int(v) for v in self.train.images.shape[1:])
        out: dict[str, Any] = {"channels": c, "size": (h, w), "classes": list(self.classes), **self.config}
        if "mean" not in out or "std" not in out:
            s = s2 = 0.0
            for i in range(0, len(self.train), 1024):  # float64 sums in chunks: never a float copy of the whole set
                x = self.train.images[i:i + 1024].double().div_(255)
                s = s + x.sum((0, 2, 3))
                s2 = s2 + (x * x).sum((0, 2, 3))
            n = max(1, len(self.train) * h * w)
            mean = s / n
            std = (s2 / n - mean * mean).clamp(min=1e-12).sqrt()
            out["mean"] = tuple(round(float(v), 4) for v in mean)
            out["std"] = tuple(round(max(float(v), 1e-3), 4) for v in std)
        return out


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

    return DatasetSplits(load_fashion_mnist("train", data_dir, download), load_fashion_mnist("test", data_dir, download), "fashion-mnist",
                         config={"mean": (0.2860,), "std": (0.3530,)})  # its training set's statistics


@register_dataset("cifar10")
def _cifar10(data_dir: str | None = None, download: bool = False, **_: Any) -> DatasetSplits:
    from .cifar10 import load_cifar10

    s = load_cifar10(data_dir, download)
    return DatasetSplits(s["train"], s["test"], "cifar10")


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, **kwargs: Any) -> DatasetSplits:
    """A registered name (``list_datasets()``) or a folder of class sub-folders
    (:func:`convlens.data.folders.load_image_folder_splits`); ``kwargs`` go to the loader."""
    key = name.lower().replace("_", "-")
    key = {"fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist", "cifar-10": "cifar10", "cifar": "cifar10"}.get(key, key)
    if key in _loaders:
        return _loaders[key](data_dir=data_dir, **kwargs)
    if Path(name).is_dir():
        from .folders import load_image_folder_splits

        return load_image_folder_splits(name, **kwargs)
    raise DataError(f"unknown data set {name!r}: known are {', '.join(list_datasets())}, or give a folder path with one sub-folder per class")
