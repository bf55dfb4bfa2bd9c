"""Models from timm and torchvision, and weights from local files.

Preprocessing travels with the weights: a timm model's ``pretrained_cfg`` is kept as it is;
a torchvision model gets one built from its ``Weights`` record (mean, std, crop size).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..errors import CheckpointError, ConvlensError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_OFFLINE_HINT = ("you look offline: get the weights file on a machine with internet and pass --weights FILE "
                 "(.pth or .safetensors), or use the offline backbone efficientnet_lite0")


def _is_network_error(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(k in text for k in ("connection", "resolve", "network", "urlopen", "timed out", "offline", "hub", "max retries", "localentrynotfound"))


def create_timm_model(name: str, pretrained: bool, num_classes: int | None, **kwargs: Any) -> nn.Module:
    import timm

    if not timm.is_model(name):
        from .registry import list_models

        raise ConvlensError(f"unknown model {name!r}: convlens models are {', '.join(list_models())}; "
                            "any timm name (e.g. resnet18) or tv/<torchvision name> also works")
    extra = {} if num_classes is None else {"num_classes": num_classes}
    try:
        model = timm.create_model(name, pretrained=pretrained, **extra, **kwargs)
    except Exception as exc:  # noqa: BLE001 - turned into a one-line message for the user
        if pretrained and _is_network_error(exc):
            raise ConvlensError(f"could not download ImageNet weights for {name!r}: {_OFFLINE_HINT}") from exc
        raise
    cfg = getattr(model, "pretrained_cfg", None) or {}
    model.pretrained_cfg = {**cfg, "mean": cfg.get("mean", IMAGENET_MEAN), "std": cfg.get("std", IMAGENET_STD), "num_classes": model.num_classes}
    return model


class TorchvisionClassifier(nn.Module):
    """Gives a torchvision classifier timm's interface (features / head / reset)."""

    def __init__(self, net: nn.Module, cfg: dict[str, Any]):
        super().__init__()
        self.net = net
        self.pretrained_cfg = cfg
        self._head_attr = next((a for a in ("fc", "classifier", "heads", "head") if hasattr(net, a)), "")
        if not self._head_attr:
            raise ConvlensError(f"torchvision model {type(net).__name__} has no fc/classifier/heads layer convlens can replace")
        h = self.get_classifier()
        self.num_classes = h.out_features if isinstance(h, nn.Linear) else h.out_channels

    def get_classifier(self) -> nn.Module:
        """The last Linear (or, in SqueezeNet, 1x1 Conv2d) of the classifier."""
        head = getattr(self.net, self._head_attr)
        if isinstance(head, (nn.Linear, nn.Conv2d)):
            return head
        if not (layers := [m for m in head.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]):
            raise ConvlensError(f"torchvision model {type(self.net).__name__}: no Linear/Conv2d layer in its {self._head_attr}")
        return layers[-1]

    def reset_classifier(self, num_classes: int) -> None:
        old = self.get_classifier()
        new = nn.Linear(old.in_features, num_classes) if isinstance(old, nn.Linear) else nn.Conv2d(old.in_channels, num_classes, 1)
        for parent in self.net.modules():
            for name, child in parent.named_children():
                if child is old:
                    setattr(parent, name, new)
        self.num_classes = num_classes
        self.pretrained_cfg["num_classes"] = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        head = getattr(self.net, self._head_attr)
        setattr(self.net, self._head_attr, nn.Identity())
        try:
            return self.net(x)
        finally:
            setattr(self.net, self._head_attr, head)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x if pre_logits else getattr(self.net, self._head_attr)(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def create_torchvision_model(name: str, pretrained: bool, num_classes: int | None, **kwargs: Any) -> nn.Module:
    import torchvision

    try:
        builder = torchvision.models.get_model_builder(name)
    except ValueError as exc:
        raise ConvlensError(f"unknown torchvision model {name!r}: see torchvision.models.list_models()") from exc
    cfg: dict[str, Any] = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "input_size": (3, 224, 224),
                           "crop_pct": 0.875, "interpolation": "bilinear", "num_classes": 1000}
    weights = None
    if pretrained:
        weights = torchvision.models.get_model_weights(name).DEFAULT
        t = weights.transforms()
        crop = t.crop_size[0] if isinstance(t.crop_size, (list, tuple)) else t.crop_size
        resize = t.resize_size[0] if isinstance(t.resize_size, (list, tuple)) else t.resize_size
        cfg.update(mean=tuple(t.mean), std=tuple(t.std), input_size=(3, crop, crop), crop_pct=crop / resize,
                   interpolation=str(t.interpolation.value), weights=str(weights))
    try:
        net = builder(weights=weights, **kwargs)
    except Exception as exc:  # noqa: BLE001
        if pretrained and _is_network_error(exc):
            raise ConvlensError(f"could not download ImageNet weights for tv/{name}: {_OFFLINE_HINT}") from exc
        raise
    model = TorchvisionClassifier(net, cfg)
    if num_classes is not None and num_classes != model.num_classes:
        model.reset_classifier(num_classes)
    return model


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a torch file (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise ConvlensError(f"--weights {path}: no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"{path}: not a readable weights file ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from exc
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if not isinstance(sd, dict):
        raise CheckpointError(f"{path}: holds a {type(sd).__name__}, not a state dict")
    return sd


def load_weights_file(model: nn.Module, path: str | os.PathLike) -> None:
    """Load a local state dict; a head of another size is skipped (it is re-initialised)."""
    sd = read_state_dict(path)
    own = model.state_dict()
    skipped = [k for k, v in sd.items() if k in own and own[k].shape != v.shape]
    sd = {k: v for k, v in sd.items() if k not in skipped}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    real_missing = [k for k in missing if k not in skipped]
    if unexpected or len(real_missing) > 2:
        raise CheckpointError(
            f"{path}: does not fit {getattr(model, 'convlens_name', type(model).__name__)} "
            f"({len(real_missing)} missing keys e.g. {real_missing[:2]}, {len(unexpected)} unexpected e.g. {list(unexpected)[:2]}); "
            "is it the weights of another architecture?")
