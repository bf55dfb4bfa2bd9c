"""Shared fixtures. Real data comes from ../shared/data (read-only) and Debian's Fashion-MNIST."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CONVLENS_SHARED_DATA", REPO.parent / "shared" / "data"))

# Tests are small; two torch threads on a 2-core machine, never more.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data folder {SHARED_DATA} is missing: set CONVLENS_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def fashion():
    """The real Fashion-MNIST (train 60k, test 10k) as uint8 tensors."""
    from convlens.data import load_dataset

    return load_dataset("fashion-mnist")


@pytest.fixture(scope="session")
def fashion_small(fashion):
    """A class-balanced real subset: 3,000 train and 1,000 test images."""
    g = torch.Generator().manual_seed(0)
    tr = torch.randperm(len(fashion.train), generator=g)[:3000]
    te = torch.randperm(len(fashion.test), generator=g)[:1000]
    from convlens.data import DatasetSplits

    return DatasetSplits(fashion.train.subset(tr), fashion.test.subset(te), "fashion-mnist-small")


@pytest.fixture(scope="session")
def cifar_small(shared_data):
    """200 train + 200 test real CIFAR-10 images (the first 20 of each class and split of the shipped copy)."""
    from convlens.data.cifar10 import read_archive

    return read_archive(shared_data / "cifar10-images.tar.gz", per_class=20)
