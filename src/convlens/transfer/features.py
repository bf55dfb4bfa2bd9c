"""A frozen backbone's pooled features, computed once per image and cached on disk.

When only the head learns, the backbone's output for an image never changes, so convlens
computes ``phi(x) = pool(f(normalise(x)))`` (shape (D,), D = 1280 for EfficientNet-Lite0) once
per image and per augmented view, and trains the head on the (N, D) matrix. The cache (one file
per backbone, weights, preprocessing and view; rows keyed by the SHA-256 of each image's bytes;
unreadable files remembered with their reason) is described in docs/transfer.md.
"""
from __future__ import annotations

import hashlib
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn

from ..errors import DataError
from ..engine.preprocess import normalise
from .._runtime import cache_root
from ..runs import write_checkpoint
from .backbones import Backbone
from .fast import PooledFeatures, feature_runner

AUGMENT_SPEC = "rrc(scale=0.5-1,ratio=3/4-4/3)+hflip"


def resolve_cache_dir(cache_dir: str | os.PathLike | None) -> Path | None:
    """``"default"`` -> ``$CONVLENS_CACHE/features``; ``None`` (no cache) stays ``None``."""
    if cache_dir is None:
        return None
    return cache_root() / "features" if cache_dir == "default" else Path(cache_dir)


@torch.inference_mode()
def pooled_features(model: nn.Module, images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(B, C, H, W) uint8 -> (B, D) pooled features, model in eval mode (BN running stats, no dropout)."""
    was_training = model.training
    model.eval()
    try:
        # NHWC: oneDNN's convolutions run markedly faster on CPU (see convlens.engine.preprocess)
        x = normalise(images, mean, std).contiguous(memory_format=torch.channels_last)
        return PooledFeatures(model)(x).float()
    finally:
        model.train(was_training)


def augment_view(img: torch.Tensor, seed: int) -> torch.Tensor:
    """A random resized crop (area 50-100%, aspect 3/4-4/3) + horizontal flip of one uint8
    (C, H, W) image, resized back to (H, W); fully determined by ``seed``."""
    from torchvision.transforms.v2 import functional as TF

    g = torch.Generator().manual_seed(seed)
    _, h, w = img.shape
    for _ in range(10):
        area = h * w * (0.5 + 0.5 * torch.rand(1, generator=g).item())
        r = math.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * torch.rand(1, generator=g).item())
        cw, ch = int(round(math.sqrt(area * r))), int(round(math.sqrt(area / r)))
        if 0 < cw <= w and 0 < ch <= h:
            break
    else:
        cw, ch = w, h
    top = int(torch.randint(0, h - ch + 1, (1,), generator=g))
    left = int(torch.randint(0, w - cw + 1, (1,), generator=g))
    out = TF.resized_crop(img, top, left, ch, cw, [h, w], antialias=True)
    if torch.rand(1, generator=g).item() < 0.5:
        out = out.flip(-1)
    return out


class FeatureCache:
    """Rows of features keyed by content hash, one file per namespace (atomic writes)."""

    def __init__(self, root: str | os.PathLike | None, namespace: str):
        self.namespace = namespace
        digest = hashlib.sha256(namespace.encode()).hexdigest()[:24]
        self.path = Path(root) / f"{digest}.pt" if root is not None else None
        self.rows: dict[str, torch.Tensor] = {}
        self.failed: dict[str, str] = {}
        if self.path is not None and self.path.is_file():
            try:
                blob = torch.load(self.path, map_location="cpu", weights_only=True)
                if blob.get("namespace") == namespace:
                    feats = blob["features"]
                    self.rows = {h: feats[i] for i, h in enumerate(blob["hashes"])}
                    self.failed = dict(blob.get("failed", {}))
            except Exception:  # noqa: BLE001 - a damaged cache is only a cache: recompute
                self.rows, self.failed = {}, {}

    def save(self) -> None:
        if self.path is None:
            return
        hashes = list(self.rows)
        feats = torch.stack([self.rows[h] for h in hashes]) if hashes else torch.zeros(0)
        write_checkpoint({"namespace": self.namespace, "hashes": hashes, "features": feats, "failed": self.failed}, self.path)


@dataclass
class FeatureSet:
    """Features of the images that could be read, in input order.

    ``features`` (N, D) for the plain view; ``views`` (N, V, D) for V augmented views or None;
    ``index`` (N,) positions in the input list; ``skipped`` "file: reason" for the others.
    """

    features: torch.Tensor
    views: torch.Tensor | None
    index: torch.Tensor
    skipped: list[str] = field(default_factory=list)
    computed: int = 0
    cached: int = 0


def content_hash(item: str | os.PathLike | torch.Tensor) -> str:
    """SHA-256 of a file's bytes (``missing:<path>`` when there is none) or of a uint8 image tensor with its shape."""
    if isinstance(item, torch.Tensor):
        return hashlib.sha256(str(tuple(item.shape)).encode() + item.contiguous().numpy().tobytes()).hexdigest()
    return hashlib.sha256(Path(item).read_bytes()).hexdigest() if Path(item).is_file() else f"missing:{item}"


def extract_features(backbone: Backbone, items: Sequence[str | os.PathLike] | torch.Tensor, views: int = 0, seed: int = 0,
                     cache_dir: str | os.PathLike | None = "default", batch_size: int = 32, device: torch.device | str = "cpu",
                     progress: bool = True, strict: bool = False, desc: str = "features") -> FeatureSet:
    """Pooled features of image files (or a uint8 (N, C, H, W) tensor), from the cache when there.

    ``views`` extra augmented views per image (:func:`augment_view`, seeded by ``seed``, the
    content hash and the view number, so the same image always gets the same views).
    ``cache_dir=None`` disables the cache; ``"default"`` uses ``$CONVLENS_CACHE/features``.
    """
    from ..data.folders import open_image
    from ..data.prepare import fit_images

    root = resolve_cache_dir(cache_dir)
    base = backbone.key()
    caches = [FeatureCache(root, f"{base}|view=center")]
    caches += [FeatureCache(root, f"{base}|view=aug:{AUGMENT_SPEC}:seed={seed}:{v}") for v in range(views)]
    pp = backbone.preprocess
    is_tensor = isinstance(items, torch.Tensor)
    hashes = [content_hash(item) for item in items]
    skipped: list[str] = []
    todo: list[int] = []
    for i, h in enumerate(hashes):
        if h.startswith("missing:"):
            skipped.append(f"{items[i]}: no such file")
        elif h in caches[0].failed:
            skipped.append(f"{items[i]}: {caches[0].failed[h]}")
        elif any(h not in c.rows for c in caches):
            todo.append(i)
    if strict and skipped:
        raise DataError(f"{skipped[0]} (--strict)")
    # only when something is left to compute: a fully cached run never builds the network
    runner = feature_runner(backbone, device, root) if todo else None
    transform = pp.transform() if todo and not is_tensor else None
    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo) * (1 + views), desc=desc, unit="img", file=sys.stderr, leave=False, disable=not progress or not todo)
    computed = 0
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        imgs, ok = [], []
        for i in chunk:
            try:
                imgs.append(fit_images(items[i:i + 1], pp.channels, pp.image_size)[0] if is_tensor
                            else transform(open_image(items[i], pp.channels)))
                ok.append(i)
            except DataError as exc:
                if strict:
                    raise DataError(f"{exc} (--strict: fix or remove the file)") from None
                reason = str(exc).split(": ", 1)[1]
                caches[0].failed[hashes[i]] = reason
                skipped.append(f"{items[i]}: {reason}")
        if not ok:
            continue
        batch = torch.stack(imgs)
        for v, cache in enumerate(caches):
            x = torch.stack([augment_view(img, _view_seed(seed, hashes[i], v)) for img, i in zip(batch, ok)]) if v else batch
            for row, i in zip(runner(x), ok):
                cache.rows[hashes[i]] = row.clone()
            bar.update(len(ok))
        computed += len(ok)
    bar.close()
    if todo or any(h in caches[0].failed for h in hashes):
        for c in caches:
            c.save()
    keep = [i for i, h in enumerate(hashes) if h in caches[0].rows]
    feats = torch.stack([caches[0].rows[hashes[i]] for i in keep]) if keep else torch.zeros(0, 0)
    view_t = torch.stack([torch.stack([c.rows[hashes[i]] for c in caches[1:]]) for i in keep]) if views and keep else None
    return FeatureSet(feats, view_t, torch.tensor(keep, dtype=torch.int64), skipped, computed, len(keep) - computed)


def _view_seed(seed: int, content_hash: str, view: int) -> int:
    return (int(content_hash[:12], 16) * 1_000_003 + seed * 7919 + view) % (2**62)
