"""Which layers to look at: stages (low -> mid -> high), the CAM target, names and indices.

One forward pass of a blank image records each module's output shape in execution order
(:func:`trace_layers`, cached per model and input size). **Stages**: among the shallowest
modules (the smallest depth giving at least 3 resolutions), each run of outputs with the same
H x W, represented by its last module. **CAM target**: the last spatial layer, i.e. the last
feature map before global pooling, where Grad-CAM's maps are class-discriminative (Selvaraju
et al. 2017). docs/explain.md ("What is shown, exactly") gives the examples.
"""
from __future__ import annotations

import difflib
import weakref
from dataclasses import dataclass
from functools import partial
from typing import Sequence

import torch
import torch.nn as nn

from ..errors import ConvlensError
from ..shapes.table import measuring
from .hooks import forward_hooks

_CACHE: "weakref.WeakKeyDictionary[nn.Module, dict[tuple, list[LayerInfo]]]" = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class LayerInfo:
    """One module's output in a forward pass: ``shape`` without the batch dimension."""

    name: str
    kind: str
    shape: tuple[int, ...]
    order: int

    @property
    def depth(self) -> int:
        return self.name.count(".") + 1

    @property
    def spatial(self) -> bool:
        return len(self.shape) == 3 and self.shape[1] * self.shape[2] > 1


def trace_layers(model: nn.Module, input_size: Sequence[int]) -> list[LayerInfo]:
    """Every named module's output shape, in the order the modules finish (cached)."""
    key = tuple(int(v) for v in input_size)
    per_model = _CACHE.setdefault(model, {})
    if key in per_model:
        return per_model[key]
    seen: dict[str, LayerInfo] = {}
    counter = [0]

    def hook(m: nn.Module, _inp: object, out: object, name: str) -> None:
        t = out[0] if isinstance(out, (tuple, list)) and out else out
        if isinstance(t, torch.Tensor):
            counter[0] += 1
            seen[name] = LayerInfo(name, type(m).__name__, tuple(t.shape[1:]), counter[0])

    hooks = ((m, partial(hook, name=name)) for name, m in model.named_modules() if name)
    with forward_hooks(hooks), measuring(model) as zeros, torch.no_grad():
        model(zeros(key))
    per_model[key] = sorted(seen.values(), key=lambda li: li.order)
    return per_model[key]


def spatial_layers(model: nn.Module, input_size: Sequence[int]) -> list[LayerInfo]:
    """Layers whose output is a feature map (C, H, W), H x W > 1; a model without them has nothing to show."""
    if not (sp := [li for li in trace_layers(model, input_size) if li.spatial]):
        raise ConvlensError(f"model {getattr(model, 'convlens_name', type(model).__name__)!r} has no convolutional layer (no layer outputs a (C, H, W) feature map): "
                            "feature maps, filters and CAMs need a CNN; explain a cnn/fashion_vgg run or a CNN backbone instead")
    return sp


def stage_layers(model: nn.Module, input_size: Sequence[int]) -> list[str]:
    """One layer per resolution stage, low -> high level (see the module docstring)."""
    sp = spatial_layers(model, input_size)
    max_depth = max(li.depth for li in sp)
    for d in range(1, max_depth + 1):
        cand = [li for li in sp if li.depth <= d]
        if len({li.shape[1:] for li in cand}) >= 3 or d == max_depth:
            break
    stages: list[LayerInfo] = []
    for li in cand:
        if stages and stages[-1].shape[1:] == li.shape[1:]:
            stages[-1] = li  # still the same stage: keep its last module
        else:
            stages.append(li)
    return [li.name for li in stages]


def default_feature_layers(model: nn.Module, input_size: Sequence[int]) -> list[str]:
    """The first, middle and last stage: low, mid and high level."""
    stages = stage_layers(model, input_size)
    return [stages[i] for i in sorted({0, round((len(stages) - 1) / 2), len(stages) - 1})]


def cam_target_layer(model: nn.Module, input_size: Sequence[int]) -> str:
    """The last feature map before global pooling (see the module docstring)."""
    return spatial_layers(model, input_size)[-1].name


def conv_layers(model: nn.Module) -> list[str]:
    """Names of the 2-D convolutions, in definition order."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def resolve_layers(model: nn.Module, input_size: Sequence[int], specs: Sequence[str | int] | None) -> list[str]:
    """``--layers``: module names with a feature-map output, or stage indices (0 = lowest,
    -1 = highest). ``None`` or empty: :func:`default_feature_layers`."""
    if not specs:
        return default_feature_layers(model, input_size)
    valid = [li.name for li in spatial_layers(model, input_size)]
    stages = stage_layers(model, input_size)
    out = []
    for s in specs:
        text = str(s).strip()
        if text.lstrip("-").isdigit():
            i = int(text)
            if not -len(stages) <= i < len(stages):
                raise ConvlensError(f"--layers {text}: stage index out of range; the {len(stages)} stages are "
                                    + ", ".join(f"{k}={n}" for k, n in enumerate(stages)))
            out.append(stages[i])
        elif text in valid:
            out.append(text)
        else:
            close = difflib.get_close_matches(text, valid, n=4, cutoff=0.6)
            near = f"; did you mean {', '.join(close)}?" if close else ";"
            shown = valid if len(valid) <= 40 else stages
            what = "valid layers are" if len(valid) <= 40 else f"stages are (of {len(valid)} valid layers, see `convlens explain layers`)"
            raise ConvlensError(f"--layers {text!r}: no such layer with a feature map{near} {what} {', '.join(shown)}")
    return out


def resolve_target_layer(model: nn.Module, input_size: Sequence[int], spec: str | int | None) -> str:
    """``--layer`` of ``cam``: a name or stage index; ``None``: :func:`cam_target_layer`."""
    return cam_target_layer(model, input_size) if spec is None or spec == "" else resolve_layers(model, input_size, [spec])[0]
