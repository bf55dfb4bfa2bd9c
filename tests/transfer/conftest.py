"""Shared fixtures: the real pretrained backbone (built once) and a small real cat/dog folder."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def lite0():
    """EfficientNet-Lite0 with its offline ImageNet weights and a 2-class head."""
    from convlens.transfer.backbones import load_backbone

    return load_backbone("efficientnet_lite0", num_classes=2)


@pytest.fixture(scope="session")
def small_catdog(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of 8 train + 4 test real photos per class (one BMP-named-.jpg among them)."""
    src = shared_data / "catanddog"
    dst = tmp_path_factory.mktemp("catdog")
    for split, n in (("train", 8), ("test", 4)):
        for c in ("Cat", "Dog"):
            files = sorted((src / split / c).iterdir(), key=lambda p: p.name)[:n]
            (dst / split / c).mkdir(parents=True)
            for p in files:
                shutil.copyfile(p, dst / split / c / p.name)
    shutil.copyfile(src / "train" / "Cat" / "23.jpg", dst / "train" / "Cat" / "23.jpg")  # a BMP named .jpg
    return dst
