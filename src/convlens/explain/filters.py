"""What the filters look like: first-layer kernels as colour tiles, deeper ones per channel.

A first-layer kernel W (C_in=3, k, k) acts on RGB pixels, so it *is* a small colour image:
shown as RGB after a symmetric rescaling W / (2 max|W|) + 0.5 (grey = 0, so the sign shows).
A grey-image model's kernels (1, k, k) are grey tiles. A deeper kernel has one k x k slice
per input channel; those are not colours, so each slice is its own tile (diverging colours,
red > 0 > blue), filters ranked by their norm ||W_o||.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch.nn as nn

from ..errors import ConvlensError
from .feature_maps import mosaic
from .hooks import named_module
from .layers import conv_layers


@dataclass
class Filters:
    """One conv layer's weights ``weight`` (C_out, C_in/groups, k, k) and ``order`` (C_out,) by norm, largest first."""

    layer: str
    weight: np.ndarray
    order: np.ndarray
    is_first: bool = False


def get_filters(model: nn.Module, layer: str | int | None = None) -> Filters:
    """Weights of a conv layer: by name, by index among the conv layers, or the first one (default)."""
    if not (convs := conv_layers(model)):
        raise ConvlensError(f"model {getattr(model, 'convlens_name', type(model).__name__)!r} has no convolutional layer: it has no filters to show; explain a CNN instead")
    if layer is None:
        lname = convs[0]
    elif str(layer).lstrip("-").isdigit():
        i = int(layer)
        if not -len(convs) <= i < len(convs):
            raise ConvlensError(f"--layers {layer}: the model has {len(convs)} conv layers (0-{len(convs) - 1})")
        lname = convs[i]
    elif str(layer) in convs:
        lname = str(layer)
    else:
        shown = ", ".join(convs if len(convs) <= 30 else convs[:30] + ["..."])
        raise ConvlensError(f"--layers {layer!r}: not a conv layer; conv layers are {shown}")
    w = named_module(model, lname).weight.detach().float().cpu().numpy()
    return Filters(lname, w, _by_norm(w), is_first=(lname == convs[0]))


def _by_norm(w: np.ndarray) -> np.ndarray:
    """Indices of ``w``'s slices ``w[i]`` by their L2 norm, largest first (stable)."""
    return np.argsort(-np.sqrt((w.reshape(w.shape[0], -1) ** 2).sum(1)), kind="stable")


def default_filter_layers(model: nn.Module) -> list[str]:
    """The first conv, then the first, middle and last of the deeper convs with k > 1
    (1x1 kernels are single pixels: nothing to see)."""
    if not (convs := conv_layers(model)):
        get_filters(model)  # raises the one-line error
    deeper = [n for n in convs[1:] if max(named_module(model, n).kernel_size) > 1]
    pick = [deeper[i] for i in sorted({0, len(deeper) // 2, len(deeper) - 1})] if deeper else []
    return [convs[0]] + pick


def filter_tiles(f: Filters, max_filters: int = 32, max_inputs: int = 8) -> tuple[np.ndarray, int, str]:
    """Tiles to draw: RGB/grey tiles (N, k, k[, 3]) for a first layer, else (N*I, k, k) per-channel
    slices of the ``max_filters`` strongest filters, ``max_inputs`` strongest inputs each.
    Returns (tiles, columns, label)."""
    w = f.weight[f.order[:max_filters]]
    if f.is_first:
        tiles = w / (2 * np.abs(w).max() + 1e-12) + 0.5
        tiles = tiles.transpose(0, 2, 3, 1) if w.shape[1] == 3 else tiles[:, 0]
        return tiles, min(16, len(tiles)), "RGB" if w.shape[1] == 3 else "grey"
    if w.shape[1] == 1:  # depthwise: one k x k kernel per channel
        return w[:, 0], 8, "depthwise"
    n_in = min(max_inputs, w.shape[1])
    return np.concatenate([wo[_by_norm(wo)[:n_in]] for wo in w]), n_in, "per-channel"


def plot_filters(model: nn.Module, layers: Sequence[str | int] | None = None, max_filters: int = 32, title: str = "") -> Any:
    """One panel per layer (default :func:`default_filter_layers`)."""
    import matplotlib.pyplot as plt

    names = list(layers) if layers else default_filter_layers(model)
    fs = [get_filters(model, n) for n in names]
    panels = [filter_tiles(f, max_filters if f.is_first else min(max_filters, 16)) for f in fs]
    heights = [0.7 + 0.55 * (-(-len(t) // nc)) * (8 / max(nc, 8)) for t, nc, _ in panels]
    fig, axes = plt.subplots(len(fs), 1, figsize=(8, sum(heights)), squeeze=False, gridspec_kw={"height_ratios": heights})
    for ax, f, (tiles, ncols, kind) in zip(axes[:, 0], fs, panels):
        co, ci, kh, kw = f.weight.shape
        if kind == "RGB":
            ax.imshow(np.clip(mosaic(tiles, ncols, fill=1.0), 0, 1), interpolation="nearest")
            what = f"{min(co, max_filters)} of {co} kernels as RGB"
        elif kind == "grey":
            ax.imshow(mosaic(tiles, ncols), cmap=plt.get_cmap("gray").with_extremes(bad="white"), vmin=0, vmax=1, interpolation="nearest")
            what = f"{min(co, max_filters)} of {co} kernels (grey input)"
        else:
            lim = float(np.abs(tiles).max()) + 1e-12
            ax.imshow(mosaic(tiles, ncols), cmap=plt.get_cmap("RdBu_r").with_extremes(bad="white"), vmin=-lim, vmax=lim,
                      interpolation="nearest")
            what = (f"{len(tiles)} strongest of {co} depthwise kernels" if kind == "depthwise" else
                    f"rows: {min(co, 16)} strongest of {co} filters; cols: {ncols} strongest of {ci} input channels")
        ax.set_title(f"{f.layer} {co}x{ci}x{kh}x{kw}: {what}", fontsize=8)
        ax.axis("off")
    from ..reports.plots import finish

    return finish(fig, title)
