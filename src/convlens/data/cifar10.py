"""CIFAR-10: 50,000 + 10,000 colour 32x32 images of 10 classes, as uint8 tensors.

Looked for, in order (the first that exists wins):

1. ``--data-dir DIR``: the official ``cifar-10-batches-py`` pickles (``DIR`` itself or
   ``DIR/cifar-10-batches-py``), a ``train/<class>`` + ``test/<class>`` folder of small images,
   or a ``.tar.gz`` of such a folder;
2. the lecture's own image-folder copy ``cifar10-images.tar.gz`` in the project's shared data
   folder (``$CONVLENS_SHARED_DATA`` or ``../shared/data``);
3. the official pickles in ``$CONVLENS_CACHE/cifar-10-batches-py`` (where ``--download`` puts them);
4. with ``--download``: torchvision's download (online).

Image folders and archives are decoded once (60,000 JPEGs: ~20 s) into one uint8 tensor file
in ``$CONVLENS_CACHE/cifar10/``, keyed on the source's path, size and modification time; later
loads read that file in about a second. Pickles are read through
:func:`convlens.safe_pickle.safe_load`, which refuses anything but arrays and containers (a
planted pickle cannot run code). The JPEG copy costs a little accuracy against the original
pickles (lossy re-encoding); which source was used is recorded in ``ImageTensors.source``.
"""
from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from .._runtime import cache_root, shared_data_dir
from ..errors import DataError
from .base import ImageTensors

#: The official label order (``batches.meta``'s ``label_names``); folder copies are mapped onto it.
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
#: Per-channel mean and standard deviation of the 50,000 training images (pixels in [0, 1]).
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
#: What a model for this data set expects: the data set owns it, models copy it into ``pretrained_cfg``.
DATA_CFG = {"input_size": (3, 32, 32), "mean": MEAN, "std": STD, "num_classes": 10, "classes": CLASSES,
            "interpolation": "bilinear", "crop_pct": 1.0}
SHARED_ARCHIVE = "cifar10-images.tar.gz"
PICKLE_DIR = "cifar-10-batches-py"
_TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
_IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".ppm")


# ---- decoding -----------------------------------------------------------------------------
def _decode(data: bytes, name: str) -> np.ndarray:
    """One image file's bytes -> (H, W, 3) uint8, read by content (not by extension)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as exc:
        raise DataError(f"{name}: not a readable image ({exc}); remove or replace it") from exc


def _stack(split: str, items: list[tuple[str, int, np.ndarray]], classes: list[str], source: str) -> ImageTensors:
    if not items:
        raise DataError(f"{source}: no {split} images found (expected {split}/<class>/*.jpg)")
    sizes = {a.shape for _, _, a in items}
    if len(sizes) != 1:
        raise DataError(f"{source}: {split} images differ in size ({sorted(sizes)[:3]}...); this reader takes one size, "
                        "use the image-folder loader (--data FOLDER) to resize them")
    images = torch.from_numpy(np.stack([a for _, _, a in items])).permute(0, 3, 1, 2).contiguous()
    return _tensors(split, images, torch.tensor([c for _, c, _ in items], dtype=torch.int64), classes, source)


def _tensors(split: str, images: torch.Tensor, labels: torch.Tensor, classes: list[str], source: str, **meta: str) -> ImageTensors:
    return ImageTensors(images, labels, list(classes), name=f"cifar10-{split}", source=source, meta={"data_cfg": dict(DATA_CFG), **meta})


def _split_class(member: str) -> tuple[str, str] | None:
    """``[prefix/]train/cat/0001.jpg`` -> ("train", "cat"); ``None`` for other paths."""
    parts = Path(member).parts
    for i in range(len(parts) - 2):
        if parts[i] in ("train", "test") and i + 3 == len(parts):
            return parts[i], parts[i + 1]
    return None


def read_archive(path: str | os.PathLike, per_class: int | None = None) -> dict[str, ImageTensors]:
    """A ``.tar[.gz]`` holding ``train/<class>/*`` and ``test/<class>/*`` -> ``{"train", "test"}``.

    ``per_class``: keep only the first N files (by name) of each class and split: a few hundred
    real images for tests, at the cost of one pass of decompression (~0.5 s), no decoding of the rest.
    """
    path = Path(path)
    raw: dict[str, list[tuple[str, str, bytes]]] = {"train": [], "test": []}
    try:
        with tarfile.open(path, "r:*") as tar:
            members = [(m, _split_class(m.name)) for m in tar if m.isfile()]
            members = [(m, sc) for m, sc in members if sc and Path(m.name).suffix.lower() in _IMAGE_EXT]
            members.sort(key=lambda t: t[0].name)
            taken: Counter[tuple[str, str]] = Counter()
            for m, (split, cls) in members:
                if per_class is None or taken[split, cls] < per_class:
                    taken[split, cls] += 1
                    if (f := tar.extractfile(m)) is not None:
                        raw[split].append((m.name, cls, f.read()))
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable tar archive ({exc}); download it again") from exc
    return _to_splits(raw, str(path))


def read_small_image_folder(root: str | os.PathLike) -> dict[str, ImageTensors]:
    """``root/train/<class>/*`` + ``root/test/<class>/*`` of same-size small images -> uint8 splits."""
    root = Path(root)
    raw: dict[str, list[tuple[str, str, bytes]]] = {"train": [], "test": []}
    for split in ("train", "test"):
        for f in sorted((root / split).glob("*/*")):
            if f.is_file() and f.suffix.lower() in _IMAGE_EXT:
                raw[split].append((str(f), f.parent.name, f.read_bytes()))
    return _to_splits(raw, str(root))


def _to_splits(raw: dict[str, list[tuple[str, str, bytes]]], source: str) -> dict[str, ImageTensors]:
    names = sorted({c for items in raw.values() for _, c, _ in items})
    classes = list(CLASSES) if set(names) == set(CLASSES) else names  # CIFAR-10's own order, else alphabetical
    if {c for _, c, _ in raw["test"]} - {c for _, c, _ in raw["train"]}:
        raise DataError(f"{source}: test/ has classes that train/ lacks; both need the same class folders")
    index = {c: i for i, c in enumerate(classes)}
    return {split: _stack(split, [(n, index[c], _decode(b, n)) for n, c, b in items], classes, source)
            for split, items in raw.items()}


def read_pickles(folder: str | os.PathLike) -> dict[str, ImageTensors]:
    """The official ``cifar-10-batches-py`` folder (``data_batch_1..5``, ``test_batch``), unpickled safely."""
    from ..safe_pickle import safe_load

    folder = Path(folder)
    out: dict[str, ImageTensors] = {}
    for split, names in (("train", _TRAIN_BATCHES), ("test", ["test_batch"])):
        xs, ys = [], []
        for n in names:
            d = safe_load(folder / n)
            if not isinstance(d, dict) or "data" not in d or "labels" not in d:
                raise DataError(f"{folder / n}: not a CIFAR-10 batch (expected a dict with 'data' and 'labels')")
            x = np.asarray(d["data"], dtype=np.uint8)
            if x.ndim != 2 or x.shape[1] != 3072 or len(x) != len(d["labels"]):
                raise DataError(f"{folder / n}: data of shape {x.shape} with {len(d['labels'])} labels; expected (N, 3072)")
            xs.append(x.reshape(-1, 3, 32, 32))
            ys.append(np.asarray(d["labels"], dtype=np.int64))
        labels = torch.from_numpy(np.concatenate(ys))
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) > 9):
            raise DataError(f"{folder}: labels outside 0-9")
        out[split] = _tensors(split, torch.from_numpy(np.concatenate(xs)), labels, CLASSES, str(folder))
    return out


# ---- the decode-once cache --------------------------------------------------------------
def _source_key(src: Path) -> str:
    """Path, size and mtime of the archive (or of every file of a folder): a changed copy is re-read."""
    h = hashlib.sha1(str(src.resolve()).encode())
    files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(src) if f != src else ''}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def cached_splits(src: str | os.PathLike) -> dict[str, ImageTensors]:
    """Decode an archive or image folder once; afterwards read ``$CONVLENS_CACHE/cifar10/<key>.pt``."""
    from ..runs import write_checkpoint

    src = Path(src)
    cache = cache_root() / "cifar10" / f"{src.name.split('.')[0]}-{_source_key(src)}.pt"
    if cache.is_file():
        try:
            d = torch.load(cache, weights_only=True, mmap=True)
            return {s: _tensors(s, d[f"{s}_images"], d[f"{s}_labels"], d["classes"], str(src), cache=str(cache))
                    for s in ("train", "test")}
        except Exception:  # noqa: BLE001 -- a damaged cache file is rebuilt, never trusted
            cache.unlink(missing_ok=True)
    splits = read_archive(src) if src.is_file() else read_small_image_folder(src)
    cache.parent.mkdir(parents=True, exist_ok=True)
    write_checkpoint({"train_images": splits["train"].images, "train_labels": splits["train"].labels,
                      "test_images": splits["test"].images, "test_labels": splits["test"].labels,
                      "classes": splits["train"].classes}, cache)
    for s in splits.values():
        s.meta["cache"] = str(cache)
    return splits


# ---- finding it ---------------------------------------------------------------------------
def _pickle_folder(d: Path) -> Path | None:
    return next((c for c in (d, d / PICKLE_DIR) if (c / "test_batch").is_file() and all((c / n).is_file() for n in _TRAIN_BATCHES)),
                None)


def _candidates(data_dir: str | os.PathLike | None) -> Iterator[tuple[str, Path]]:
    if data_dir is not None:
        d = Path(data_dir).expanduser()
        if d.is_file():
            yield "archive", d
        elif (p := _pickle_folder(d)) is not None:
            yield "pickles", p
        elif (d / "train").is_dir() and (d / "test").is_dir():
            yield "folder", d
        elif (d / SHARED_ARCHIVE).is_file():
            yield "archive", d / SHARED_ARCHIVE
        return
    shared = shared_data_dir()
    if shared is not None and (shared / SHARED_ARCHIVE).is_file():
        yield "archive", shared / SHARED_ARCHIVE
    if (p := _pickle_folder(cache_root())) is not None:
        yield "pickles", p


def find_cifar10(data_dir: str | os.PathLike | None = None, download: bool = False) -> tuple[str, Path]:
    """``(kind, path)`` of the first CIFAR-10 source found, kind in ``archive | folder | pickles``."""
    for kind, path in _candidates(data_dir):
        return kind, path
    if data_dir is not None:
        raise DataError(f"--data-dir {data_dir}: no CIFAR-10 there; expected the {PICKLE_DIR} pickles, "
                        f"train/<class> + test/<class> image folders, or a .tar.gz of them")
    if download:
        return "pickles", _download()
    raise DataError(f"CIFAR-10 not found. Get it one of four ways: --data-dir DIR (the {PICKLE_DIR} pickles, or "
                    f"train/<class> + test/<class> image folders); put {SHARED_ARCHIVE} in ../shared/data or "
                    f"$CONVLENS_SHARED_DATA; put {PICKLE_DIR} in {cache_root()}; or, online, add --download")


def _download() -> Path:
    from torchvision.datasets import CIFAR10

    try:
        CIFAR10(str(cache_root()), train=True, download=True)
    except Exception as exc:
        raise DataError(f"CIFAR-10 download failed ({type(exc).__name__}: {exc}); offline, use --data-dir or {SHARED_ARCHIVE}") from exc
    return cache_root() / PICKLE_DIR


def load_cifar10(data_dir: str | os.PathLike | None = None, download: bool = False) -> dict[str, ImageTensors]:
    """``{"train": 50,000 images, "test": 10,000}``: uint8 (N, 3, 32, 32) and int64 labels."""
    kind, path = find_cifar10(data_dir, download)
    return read_pickles(path) if kind == "pickles" else cached_splits(path)
