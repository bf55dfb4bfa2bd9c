"""Feature maps of a trained network, strongest channels first (not the chapter's first 16 of an
untrained one: docs/explain.md). The channels of layer output ``A`` (C, H, W) are ranked by
their strength on this image,

    s_k = (1 / HW) Σ_ij |A_kij|        (for a ReLU output: the mean activation).

Tiles of one grid share one colour scale, so a faint tile is a weak channel, not a rescaled one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from .base import Explainable, prepare_image
from .hooks import capture_activations
from .layers import resolve_layers


@dataclass
class FeatureMaps:
    """One layer's output for one image: ``activations`` (C, H, W); ``strength`` (C,) = s_k;
    ``order`` (C,) channel indices, strongest first."""

    layer: str
    activations: np.ndarray
    strength: np.ndarray
    order: np.ndarray

    def top(self, k: int = 16) -> list[int]:
        return [int(c) for c in self.order[:k]]


def rank_channels(act: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(C, H, W) -> (order, strength): channels sorted by s_k = mean |A_k|, descending (stable)."""
    a = act.detach().float().cpu().numpy() if isinstance(act, torch.Tensor) else np.asarray(act, dtype=np.float32)
    strength = np.abs(a).reshape(a.shape[0], -1).mean(axis=1)
    return np.argsort(-strength, kind="stable"), strength


def from_activations(acts: dict[str, torch.Tensor], layers: Sequence[str]) -> list[FeatureMaps]:
    """:class:`FeatureMaps` of the first image of a batch captured by ``capture_activations``."""
    out = []
    for name in layers:
        a = acts[name][0].float().cpu().numpy()
        order, strength = rank_channels(a)
        out.append(FeatureMaps(name, a, strength, order))
    return out


def compute_feature_maps(ex: Explainable, image: Any, layers: Sequence[str | int] | None = None) -> list[FeatureMaps]:
    """Feature maps of ``layers`` (names or stage indices; default low / mid / high stage) for one image."""
    names = resolve_layers(ex.model, ex.input_size, layers)
    with capture_activations(ex.model, names) as acts, torch.no_grad():
        ex.model(prepare_image(image, ex).x)
    return from_activations(acts, names)


def mosaic(tiles: np.ndarray, ncols: int, gap: int = 1, fill: float = np.nan) -> np.ndarray:
    """(K, h, w[, 3]) -> one (rows*(h+gap)-gap, ncols*(w+gap)-gap[, 3]) array, gaps ``fill`` (NaN: drawn as background)."""
    k, h, w = tiles.shape[:3]
    nrows = -(-k // ncols)
    m = np.full((nrows * (h + gap) - gap, ncols * (w + gap) - gap, *tiles.shape[3:]), fill, dtype=np.float32)
    for i in range(k):
        r, c = divmod(i, ncols)
        m[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = tiles[i]
    return m


def plot_feature_maps(fms: FeatureMaps | Sequence[FeatureMaps], k: int = 16, ncols: int = 8, title: str = "") -> "Any":
    """One grid per layer (rows of the figure): the ``k`` strongest channels, each tile labelled
    ``layer:channel`` with its strength. One ``imshow`` per grid (a mosaic), not one axes per
    tile: 3 grids render in a fraction of the time."""
    import matplotlib.pyplot as plt

    fms = [fms] if isinstance(fms, FeatureMaps) else list(fms)
    grids = [(fm, min(k, fm.activations.shape[0]), min(ncols, k, fm.activations.shape[0])) for fm in fms]  # (maps, tiles, columns)
    heights = [(-(-kk // nc)) * (fm.activations.shape[1] / fm.activations.shape[2]) * (10 / nc) + 0.6 for fm, kk, nc in grids]
    fig, axes = plt.subplots(len(fms), 1, figsize=(10, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, (fm, kk, nc) in zip(axes[:, 0], grids):
        top = fm.order[:kk]
        tiles = fm.activations[top]
        c, h, w = fm.activations.shape
        gap = max(1, w // 16)
        cm = plt.get_cmap("viridis").with_extremes(bad="white")
        ax.imshow(mosaic(tiles, nc, gap), cmap=cm, vmin=float(tiles.min()), vmax=float(tiles.max()), interpolation="nearest")
        for i, ch in enumerate(top):
            r, col = divmod(i, nc)
            ax.text(col * (w + gap) - 0.4, r * (h + gap) - 0.4, f"{fm.layer}:{ch}\ns={fm.strength[ch]:.2g}",
                    fontsize=6, color="white", va="top", ha="left",
                    bbox={"facecolor": "black", "alpha": 0.45, "pad": 0.5, "linewidth": 0})
        ax.set_title(f"{fm.layer}  {c}x{h}x{w}: {kk} strongest of {c} channels", fontsize=9)
        ax.axis("off")
    from ..reports.plots import finish

    return finish(fig, title)
