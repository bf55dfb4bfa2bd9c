"""Fashion-MNIST: 60,000 + 10,000 grey 28x28 images of 10 kinds of clothing.

Looked for, in order: ``--data-dir``; ``$CONVLENS_FASHION_MNIST``; Debian's
``/usr/share/datasets/fashion-mnist/`` (``apt-get install dataset-fashion-mnist``); the
torchvision download cache ``~/.cache/convlens/FashionMNIST/raw`` (downloaded when online and
``download=True``).
"""
from __future__ import annotations

import os
from pathlib import Path

from .._runtime import cache_root
from ..errors import DataError
from .base import ImageTensors
from .idx import read_idx

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find(folder: Path, stem: str) -> Path | None:
    return next((folder / n for n in (stem, stem + ".gz") if (folder / n).is_file()), None)


def find_fashion_mnist(data_dir: str | os.PathLike | None = None, download: bool = False) -> Path:
    """The folder holding the four IDX files, or a :class:`DataError` listing the three ways to get them."""
    candidates: list[Path] = []
    if data_dir is not None:
        d = Path(data_dir)
        candidates += [d, d / "raw", d / "FashionMNIST" / "raw"]
    if os.environ.get("CONVLENS_FASHION_MNIST"):
        candidates.append(Path(os.environ["CONVLENS_FASHION_MNIST"]))
    candidates += [DEBIAN_DIR, cache_root() / "FashionMNIST" / "raw"]
    for folder in candidates:
        if _find(folder, _FILES["train"][0]) and _find(folder, _FILES["test"][0]):
            return folder
    if data_dir is not None and Path(data_dir).exists():
        raise DataError(f"--data-dir {data_dir}: no Fashion-MNIST IDX files there (expected {_FILES['train'][0]}[.gz] and the three others)")
    if download:
        return _download()
    raise DataError(
        "Fashion-MNIST not found. Get it one of three ways: pass --data-dir DIR holding the four IDX files; "
        f"`apt-get install dataset-fashion-mnist` (puts them in {DEBIAN_DIR}); or, online, add --download")


def _download() -> Path:
    from torchvision.datasets import FashionMNIST

    root = cache_root()
    try:
        FashionMNIST(str(root), train=True, download=True)
        FashionMNIST(str(root), train=False, download=True)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"Fashion-MNIST download failed ({type(exc).__name__}); offline, use `apt-get install dataset-fashion-mnist` or --data-dir") from exc
    return root / "FashionMNIST" / "raw"


def load_fashion_mnist(split: str = "train", data_dir: str | os.PathLike | None = None, download: bool = False) -> ImageTensors:
    """One split as uint8 tensors: images (N, 1, 28, 28), labels (N,)."""
    if split not in _FILES:
        raise DataError(f"split {split!r}: Fashion-MNIST has 'train' and 'test'")
    folder = find_fashion_mnist(data_dir, download)
    img_path, lbl_path = (_find(folder, stem) for stem in _FILES[split])
    if img_path is None or lbl_path is None:
        raise DataError(f"{folder}: {_FILES[split][0 if img_path is None else 1]}[.gz] is missing")
    images = read_idx(img_path)
    labels = read_idx(lbl_path)
    if images.dim() != 3:
        raise DataError(f"{img_path}: holds a {images.dim()}-D array, expected images (N, 28, 28)")
    if labels.dim() != 1:
        raise DataError(f"{lbl_path}: holds a {labels.dim()}-D array, expected labels (N,)")
    if len(images) != len(labels):
        raise DataError(f"{lbl_path}: {len(labels):,} labels for {len(images):,} images in {img_path.name}; the two files do not belong together")
    if int(labels.max()) >= len(CLASSES):
        raise DataError(f"{lbl_path}: label {int(labels.max())} is out of range 0-9")
    return ImageTensors(images.unsqueeze(1), labels.long(), list(CLASSES), name=f"fashion-mnist-{split}", source=str(folder))
