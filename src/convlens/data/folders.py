"""Image folders as users really have them, decoded once into uint8 tensors.

Layout: ``root/train/<class>/*`` + ``root/test/<class>/*`` (or ``val/``, ``validation/``,
``valid/``), or ``root/<class>/*`` alone, split into a seeded, class-stratified holdout. Every
readable image becomes a (C, H, W) uint8 tensor at the size the model's preprocessing asks for
(:class:`Preprocess`); normalisation happens later, on the batch, with the weights' mean/std.
Files are read by content, never by their name; what real folders hold and how each case is
handled: docs/transfer.md, "Image folders as users have them".
"""
from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

from ..errors import DataError
from .base import ImageTensors
from .prepare import holdout_indices, notice

TEST_DIR_NAMES = ("test", "val", "validation", "valid")
IMBALANCE_RATIO = 5.0
# Names that are never images; skipped silently (they are in every folder copied off a Mac/Windows box).
_JUNK = {".DS_Store", "Thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class Skipped:
    """A file that was not read, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class Preprocess:
    """How a file becomes a uint8 tensor: timm's eval transform without normalisation.

    ``image_size`` (H = W), ``crop_pct`` (resize short side to floor(size / crop_pct), then
    centre crop), ``interpolation`` (bicubic, bilinear...), ``channels`` (3 = RGB, 1 = grey).
    """

    image_size: int = 224
    crop_pct: float = 1.0
    interpolation: str = "bilinear"
    channels: int = 3

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "Preprocess":
        """From a model's ``pretrained_cfg`` / timm data config (``input_size``, ``crop_pct``...)."""
        size = cfg.get("input_size", (3, 224, 224))
        return cls(image_size=int(size[-1]), crop_pct=float(cfg.get("crop_pct") or 1.0),
                   interpolation=str(cfg.get("interpolation") or "bilinear"), channels=int(size[0]))

    def key(self) -> str:
        """A stable text identity, part of the feature-cache key."""
        return f"size={self.image_size},crop_pct={self.crop_pct:.4f},interp={self.interpolation},ch={self.channels}"

    def transform(self) -> Callable[[Any], torch.Tensor]:
        """PIL image -> (C, H, W) uint8 tensor, built by timm (``use_prefetcher`` = no normalise)."""
        from timm.data import create_transform

        return create_transform(input_size=(self.channels, self.image_size, self.image_size), is_training=False,
                                interpolation=self.interpolation, crop_pct=self.crop_pct, crop_mode="center",
                                use_prefetcher=True)


# ---- one file -------------------------------------------------------------------------------
def open_image(path: str | os.PathLike, channels: int = 3):
    """Decode one file into an RGB (or L) PIL image, whatever it really holds; a :class:`DataError`
    with the reason when the file cannot be read as an image."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()  # decode now: truncated data raise here, inside the try
            if getattr(im, "is_animated", False):
                im.seek(0)
            im = ImageOps.exif_transpose(im)  # phone photos: EXIF orientation
            return _to_mode(im, channels)
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image file (content is not a format PIL can read)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, EOFError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: truncated or corrupt image ({msg})") from None


def _to_mode(im, channels: int):
    """Convert any PIL mode to RGB (channels=3) or L (channels=1) without losing the picture."""
    from PIL import Image

    want = "RGB" if channels == 3 else "L"
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # PIL's convert("L") clips 16-bit values to 255 (an all-white picture): scale instead.
        arr = np.asarray(im, dtype=np.float64)
        top = 1.0 if im.mode == "F" and arr.max() <= 1.0 else (255.0 if arr.max() <= 255 else 65535.0)
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        im = Image.fromarray(arr, mode="L")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), im.convert("RGBA"))  # on white
    if im.mode != want:
        im = im.convert(want)  # CMYK, YCbCr, LAB, 1-bit, grey <-> RGB
    return im


def load_image(path: str | os.PathLike, preprocess: Preprocess | None = None) -> torch.Tensor:
    """One file -> (C, H, W) uint8 tensor through ``preprocess`` (default 224, no crop)."""
    pp = preprocess or Preprocess()
    return pp.transform()(open_image(path, pp.channels))


# ---- a folder -------------------------------------------------------------------------------
SKIPPED_SHOWN = 10


def skipped_once(*lists: Iterable[str]) -> list[str]:
    """The skipped files of several splits, each once: a test split held out of the training folder
    inherits that folder's list."""
    return list(dict.fromkeys(s for skipped in lists for s in skipped))


def log_skipped(skipped: Sequence[object], where: str, log: Callable[[str], None], read: int | None = None,
                shown: int = SKIPPED_SHOWN) -> None:
    """Name the first ``shown`` skipped files with their reasons and count the rest; warn when they
    outnumber the ``read`` images.

    A folder given by mistake (a home folder, /tmp) holds thousands of files that are no images;
    a line for each buried the run's own output, and the run went on to classify whatever
    sub-folders it found. The run's summary.json keeps the whole list.
    """
    if not skipped:
        return
    log(f"skipped {len(skipped)} file(s) in {where}:")
    for s in skipped[:shown]:
        log(f"  {s}")
    if len(skipped) > shown:
        log(f"  ... and {len(skipped) - shown} more (the run's summary.json lists them all)")
    if read is not None and len(skipped) > read:
        log(f"warning: {where}: more files skipped ({len(skipped):,}) than images read ({read:,}); is it the folder you "
            "meant? It should hold one sub-folder of images per class")


def find_class_folders(root: Path) -> tuple[list[str], list[tuple[Path, int]], list[Skipped], list[str]]:
    """Classes (sorted sub-folder names), candidate files with labels, skipped entries, warnings."""
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; give a folder with one sub-folder per class")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    loose = [p for p in root.iterdir() if p.is_file() and p.name not in _JUNK and not p.name.startswith(".")]
    if not subdirs:
        raise DataError(f"{root}: holds no class sub-folders; put each class's images in its own sub-folder (e.g. {root}/cat/, {root}/dog/)")
    skipped = [Skipped(str(p), "not inside a class sub-folder") for p in loose]
    warns: list[str] = []
    classes: list[str] = []
    files: list[tuple[Path, int]] = []
    empty: list[str] = []
    for d in subdirs:
        if not (found := sorted(p for p in d.rglob("*") if p.is_file() and p.name not in _JUNK and not p.name.startswith("."))):
            empty.append(d.name)
            continue
        classes.append(d.name)
        files += [(p, len(classes) - 1) for p in found]
    if empty:  # one line however many: a folder given by mistake can hold hundreds
        more = f" and {len(empty) - SKIPPED_SHOWN} more" if len(empty) > SKIPPED_SHOWN else ""
        warns.append(f"{root}: {len(empty)} empty class folder(s) ignored: {', '.join(empty[:SKIPPED_SHOWN])}{more}")
    return classes, files, skipped, warns


def class_files(root: Path, classes: Sequence[str] | None = None) -> tuple[list[str], list[tuple[Path, int]], list[Skipped], list[str]]:
    """:func:`find_class_folders`, labelled in the order of ``classes`` when given (the test
    split takes the training split's classes; a class the training split lacks is an error)."""
    found, files, skipped, warns = find_class_folders(root)
    if classes is None:
        return found, files, skipped, warns
    if extra := sorted(set(found) - set(classes)):
        raise DataError(f"{root}: class folder(s) {extra} do not exist in the training split ({list(classes)}); rename or remove them")
    remap = {i: list(classes).index(c) for i, c in enumerate(found)}
    return list(classes), [(p, remap[y]) for p, y in files], skipped, warns


def read_image_folder(root: str | os.PathLike, preprocess: Preprocess | None = None, classes: Sequence[str] | None = None,
                      strict: bool = False, progress: bool = True, name: str | None = None,
                      log: Callable[[str], None] | None = None) -> ImageTensors:
    """Read ``root/<class>/*`` into :class:`ImageTensors` with ``paths`` and ``meta["skipped"]``
    ("file: reason"): unreadable files are skipped and reported, or with ``strict`` raise a
    :class:`DataError`. ``classes``: as in :func:`class_files`."""
    root = Path(root)
    pp = preprocess or Preprocess()
    log = log or notice
    found, files, skipped, warns = class_files(root, classes)
    transform = pp.transform()
    kept: list[tuple[torch.Tensor, int, str]] = []  # (image, label, file)
    for p, y in _progress(files, progress, f"reading {root.name}"):
        try:
            img = open_image(p, pp.channels)
        except DataError as exc:
            if strict:
                raise DataError(f"{exc} (--strict: remove or fix the file, or drop --strict to skip it)") from None
            skipped.append(Skipped(str(p), str(exc).split(": ", 1)[1]))
            continue
        kept.append((transform(img), y, str(p)))
    for w in warns:
        log(f"warning: {w}")
    if skipped and strict:
        raise DataError(f"{skipped[0]} (--strict)")
    log_skipped(skipped, str(root), log, read=len(kept))
    if not kept:
        raise DataError(f"{root}: no readable image in any class folder ({len(skipped)} file(s) skipped)")
    images, labels, paths = zip(*kept)
    return ImageTensors(torch.stack(images), torch.tensor(labels, dtype=torch.int64), list(found), name or root.name,
                        str(root), list(paths), {"skipped": [str(s) for s in skipped], "warnings": list(warns),
                                           "preprocess": pp.key()})


def class_balance_warnings(data: ImageTensors) -> list[str]:
    """Warnings for one-image classes and largest/smallest class ratios above 5."""
    counts = data.class_counts()
    out = [f"class {c!r} has a single image in {data.source}: it can be learnt but not tested" for c, n in counts.items() if n == 1]
    present = [n for n in counts.values() if n > 0]
    if present and max(present) / min(present) > IMBALANCE_RATIO:
        big = max(counts, key=counts.get)
        small = min((c for c in counts if counts[c] > 0), key=counts.get)
        out.append(f"classes are imbalanced in {data.source}: {big!r} has {counts[big]} images, {small!r} {counts[small]} "
                   f"({max(present) / min(present):.0f}x); accuracy will flatter the large class, look at per-class accuracy")
    return out


def stratified_holdout(data: ImageTensors, fraction: float, seed: int = 0) -> tuple[ImageTensors, ImageTensors]:
    """:func:`holdout_indices` applied to ``data``: (train, held-out test)."""
    keep, hold = holdout_indices(data.labels, data.num_classes, fraction, seed)
    return data.subset(keep, name=f"{data.name}-train"), data.subset(hold, name=f"{data.name}-test")


def load_image_folder_splits(path: str | os.PathLike, image_size: int | str | None = None, test_fraction: float = 0.2,
                             seed: int = 0, strict: bool = False, progress: bool = True,
                             log: Callable[[str], None] | None = None, pretrained_cfg: dict[str, Any] | None = None,
                             **_: Any):
    """An image folder (either layout of the module docstring) as :class:`~convlens.data.DatasetSplits`
    (train, test); a single folder is split by :func:`stratified_holdout`. Preprocessing comes from a
    model's ``pretrained_cfg`` (what the engine passes), else ``image_size`` (default 224);
    ``image_size="native"``: the folder's own size and colour (:func:`native_preprocess`), for models
    built from scratch.
    """
    from .registry import DatasetSplits

    root = Path(path)
    log = log or notice
    if pretrained_cfg and image_size is None:
        preprocess = Preprocess.from_config(pretrained_cfg)
    elif image_size == "native":
        preprocess = native_preprocess(root)
    else:
        preprocess = Preprocess(image_size=image_size or 224)
    read = partial(read_image_folder, preprocess=preprocess, strict=strict, progress=progress, log=log)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; give a folder with train/ and test/ (or one sub-folder per class)")
    test_dir = next((root / n for n in TEST_DIR_NAMES if (root / n).is_dir()), None)
    if (root / "train").is_dir():
        train = read(root / "train", name=f"{root.name}-train")
        if test_dir is None:
            log(f"note: {root} has train/ but no test/ (or val/): holding out {test_fraction:.0%} of train, seed {seed}")
            train, test = stratified_holdout(train, test_fraction, seed)
        else:
            test = read(test_dir, classes=train.classes, name=f"{root.name}-test")
    else:
        train, test = stratified_holdout(read(root, name=root.name), test_fraction, seed)
        train.meta["holdout"] = test.meta["holdout"] = {"fraction": test_fraction, "seed": seed}
    for w in class_balance_warnings(train):
        log(f"warning: {w}")
    if len(test) == 0:
        log(f"warning: {root}: the test split is empty; test accuracy will not be reported")
    return DatasetSplits(train, test, root.name)


def native_preprocess(root: str | os.PathLike) -> Preprocess:
    """The folder's own size and colour, for a model built from scratch: the first readable
    image's shorter side (each image is resized to it and centre-cropped square) and 1 channel
    when it is greyscale, else 3."""
    from PIL import Image

    root = Path(root)
    _, files, _, _ = find_class_folders(root / "train" if (root / "train").is_dir() else root)
    for p, _ in files[:20]:
        try:
            with Image.open(p) as im:
                return Preprocess(image_size=min(im.size), channels=1 if im.mode in ("1", "L", "LA", "I", "I;16", "F") else 3)
        except OSError:
            continue
    raise DataError(f"{root}: no readable image among its first files; give a folder with one sub-folder of images per class")


def _progress(items: Sequence[Any], enabled: bool, desc: str):
    """``items`` with a tqdm bar on stderr (when enabled and at least 50 of them)."""
    if not enabled or len(items) < 50:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="img", leave=False, file=sys.stderr)


__all__ = ["Preprocess", "Skipped", "class_balance_warnings", "find_class_folders", "holdout_indices", "load_image", "load_image_folder_splits",
           "open_image", "read_image_folder", "stratified_holdout"]

warnings.filterwarnings("ignore", message=".*Palette images with Transparency.*")  # we handle it (composite on white)
