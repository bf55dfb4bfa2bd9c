"""One registry for every model convlens can build, in the style of timm.

Our own models register with :func:`register_model`; any other name is handed to timm
(``timm.create_model``) or, with the ``tv/`` prefix, to torchvision. Every model answers the
same interface:

* ``forward_features(x)``: the backbone's output before pooling/classifier,
* ``forward_head(x, pre_logits=False)``: pooling + classifier (or the vector before it),
* ``reset_classifier(num_classes)``: a new head for a new task,
* ``pretrained_cfg``: preprocessing that travels with the weights (``mean``, ``std``,
  ``input_size`` as (C, H, W), ``num_classes``, ``interpolation``, ``crop_pct``).
"""
from __future__ import annotations

import fnmatch
import os
from typing import Any, Callable

import torch.nn as nn

from ..errors import ConvlensError

_entrypoints: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: the function's name becomes the model's name."""
    name = fn.__name__
    if name in _entrypoints:
        raise ValueError(f"model {name!r} registered twice")
    _entrypoints[name] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Names of convlens' own registered models matching a shell pattern."""
    _ensure_builtin_models()
    return sorted(n for n in _entrypoints if fnmatch.fnmatch(n, pattern))


def describe_models() -> dict[str, str]:
    """``{name: first line of its docstring}`` of convlens' own models."""
    _ensure_builtin_models()
    return {n: (_entrypoints[n].__doc__ or "").strip().partition("\n")[0] for n in sorted(_entrypoints)}


def is_model(name: str) -> bool:
    _ensure_builtin_models()
    return name in _entrypoints


def register_untrained(name: str, build: Callable[..., nn.Module], doc: str, how: str) -> Callable[..., nn.Module]:
    """Register ``name`` as ``build(num_classes=...)`` (10 classes unless asked), documented by ``doc``;
    it has no pretrained weights, and asking for them raises an error ending with ``how`` to train it."""
    def make(pretrained: bool = False, num_classes: int | None = None, **kwargs: Any) -> nn.Module:
        if pretrained:
            raise ConvlensError(f"model {name!r} has no pretrained weights; {how}")
        return build(num_classes=num_classes or 10, **kwargs)

    make.__name__ = make.__qualname__ = name
    make.__doc__ = doc
    return register_model(make)


def _ensure_builtin_models() -> None:
    # importing the modules runs their register_model / register_untrained calls
    from . import cifar, fashion, pretrained  # noqa: F401


def create_model(name: str, pretrained: bool = False, num_classes: int | None = None,
                 weights: str | os.PathLike | None = None, **kwargs: Any) -> nn.Module:
    """Build a model by name.

    Args:
        name: a convlens model (``list_models()``), ``graph/gcn`` (node classifier of ``graph train``), a timm name (``resnet18``,
            ``tf_efficientnet_lite0``...) or ``tv/<torchvision name>``.
        pretrained: load ImageNet weights (offline: only ``efficientnet_lite0`` ships them).
        num_classes: classes of the new head (``None``: the model's default).
        weights: a local ``.pth``/``.pt``/``.safetensors`` state dict to load instead.
    """
    _ensure_builtin_models()
    if name in _entrypoints:
        try:
            model = _entrypoints[name](pretrained=pretrained, num_classes=num_classes, **kwargs)
        except TypeError as exc:
            if "argument" not in str(exc) or not kwargs:
                raise
            raise ConvlensError(f"model {name!r} does not take {sorted(kwargs)}: {exc} (check --model-kwargs)") from None
    elif name == "graph/gcn":  # graph runs record it; PyG is imported only here
        from ..graph.models import GCN

        kwargs["out_channels"] = num_classes or kwargs.get("out_channels", 2)
        model = GCN(**kwargs)
    else:  # tv/<torchvision name>, else a timm name
        from .external import create_timm_model, create_torchvision_model

        make, bare = (create_torchvision_model, name[3:]) if name.startswith("tv/") else (create_timm_model, name)
        model = make(bare, pretrained=pretrained and weights is None, num_classes=num_classes, **kwargs)
    if weights is not None:
        from .external import load_weights_file

        load_weights_file(model, weights)
    model.convlens_name = name  # so a run can rebuild it
    return model


def create_model_for_data(name: str, data_config: dict[str, Any], **kwargs: Any) -> nn.Module:
    """A model trained from scratch, shaped by its data: ``in_chans`` and ``num_classes`` (and
    ``img_size`` for convlens' own models) from ``data_config`` (:meth:`DatasetSplits.data_config
    <convlens.data.registry.DatasetSplits.data_config>`); its ``pretrained_cfg`` carries the data's
    mean, std and input size, so preprocessing travels with the weights. ``kwargs`` win."""
    c, (h, w) = data_config["channels"], data_config["size"]
    kw: dict[str, Any] = {"in_chans": c, **({"img_size": h} if is_model(name) and h == w else {}), **kwargs}
    model = create_model(name, pretrained=False, num_classes=len(data_config["classes"]), **kw)
    model.pretrained_cfg = {**(getattr(model, "pretrained_cfg", None) or {}), "mean": tuple(data_config["mean"]),
                            "std": tuple(data_config["std"]), "input_size": (c, h, w), "num_classes": len(data_config["classes"]),
                            "dataset": data_config.get("name", "")}
    model.convlens_kwargs = kw  # what rebuilds it (recorded in the checkpoint's meta)
    return model
