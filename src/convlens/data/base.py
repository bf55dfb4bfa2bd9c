"""What every image data set becomes: uint8 tensors in memory, with class names.

Batches are sliced from the tensors (``__getitems__``), never built image by image: the
chapter's per-image PIL -> tensor conversion was 47 of the 69 s of its DNN loop.
Normalisation and augmentation happen on the batch, on the training device
(:mod:`convlens.engine.preprocess`), with the mean/std that travel with the model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


@dataclass
class ImageTensors:
    """A split of an image data set: ``images`` (N, C, H, W) uint8, ``labels`` (N,) int64."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str = ""
    source: str = ""
    paths: list[str] | None = None  # file of each image, for folders
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")
        self.labels = self.labels.to(torch.int64)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, index: torch.Tensor | Sequence[int], name: str | None = None) -> "ImageTensors":
        index = torch.as_tensor(index, dtype=torch.int64)
        paths = [self.paths[i] for i in index.tolist()] if self.paths is not None else None
        return ImageTensors(self.images[index], self.labels[index], self.classes, name or self.name, self.source, paths, dict(self.meta))

    def split(self, n_holdout: int, seed: int = 0) -> tuple["ImageTensors", "ImageTensors"]:
        """A seeded, class-stratified (train, holdout) split with ``n_holdout`` images held out
        (:func:`convlens.data.prepare.stratified_split`)."""
        from .prepare import stratified_split

        keep, held = stratified_split(self.labels, self.num_classes, n_holdout, seed)
        return self if n_holdout <= 0 else self.subset(keep, name=f"{self.name}-train"), self.subset(held, name=f"{self.name}-val")

    def class_counts(self) -> dict[str, int]:
        return dict(zip(self.classes, torch.bincount(self.labels, minlength=self.num_classes).tolist()))


class BatchedTensorDataset(Dataset):
    """Indexable by a whole list of indices at once (``DataLoader`` calls ``__getitems__``)."""

    def __init__(self, data: ImageTensors):
        self.images, self.labels = data.images, data.labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]

    def __getitems__(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(idx, dtype=torch.int64)
        return self.images.index_select(0, index), self.labels.index_select(0, index)


class EpochSeededSampler(Sampler[int]):
    """Order = f(seed, epoch): a run resumed at epoch k sees the same batches as one never
    interrupted. Shards itself under DDP (rank r takes every world-th index)."""

    def __init__(self, n: int, shuffle: bool, seed: int = 0):
        self.n, self.shuffle, self.seed, self.epoch = n, shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _rank_world(self) -> tuple[int, int]:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def __iter__(self) -> Iterator[int]:
        order = (torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)) if self.shuffle
                 else torch.arange(self.n))
        rank, world = self._rank_world()
        if world > 1:
            per = -(-self.n // world)
            order = torch.cat([order, order[: per * world - self.n]])[rank::world]
        return iter(order.tolist())

    def __len__(self) -> int:
        return -(-self.n // self._rank_world()[1])


def _identity(batch: Any) -> Any:
    return batch


def tensor_loader(data: ImageTensors, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    """A ``DataLoader`` over in-memory tensors: no workers, no per-image work, one slice per batch."""
    return DataLoader(BatchedTensorDataset(data), batch_size=batch_size, sampler=EpochSeededSampler(len(data), shuffle, seed),
                      collate_fn=_identity, num_workers=0)
