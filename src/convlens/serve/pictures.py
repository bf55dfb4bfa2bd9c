"""Pictures for the page, made on the server as PNG bytes (PIL for arrays, matplotlib for plots).

Per-image pictures (CAM overlay, feature-map grids) are arrays coloured with a matplotlib
colour map and encoded by PIL: no figure is laid out, so an image costs milliseconds, not the
~0.2 s of a matplotlib figure. Plots (curves, filters, matrices) are matplotlib figures.
"""
from __future__ import annotations

import io
from typing import Any

import numpy as np

from ..reports.html import png_data_uri as data_uri  # noqa: F401 - the page's pictures are inlined as the reports' are


def png(rgb: np.ndarray, min_side: int = 0) -> bytes:
    """(H, W, 3) / (H, W) uint8 -> PNG bytes; small pictures enlarged (nearest) to ``min_side``."""
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(rgb))
    if min_side and min(im.size) < min_side:
        f = -(-min_side // min(im.size))
        im = im.resize((im.size[0] * f, im.size[1] * f), Image.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=1)  # level 1: 5x faster than the default, a little larger
    return buf.getvalue()


def colour(a: np.ndarray, cmap: str = "viridis", vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """Float array (NaN = background, white) -> (H, W, 3) uint8 through a matplotlib colour map."""
    import matplotlib

    lo = float(np.nanmin(a)) if vmin is None else vmin
    hi = float(np.nanmax(a)) if vmax is None else vmax
    x = (a - lo) / (hi - lo if hi > lo else 1.0)
    rgba = matplotlib.colormaps[cmap].with_extremes(bad="white")(np.ma.masked_invalid(x), bytes=True)
    return rgba[..., :3]


def cam_overlay_png(image: Any, heatmap: np.ndarray) -> bytes:
    """The CAM blended on exactly the pixels the network saw (``convlens.explain.overlay``)."""
    from ..explain.cam import overlay

    return png(overlay(image.display(), heatmap), min_side=224)


def input_png(image: Any) -> bytes:
    return thumbnail_png(image.pixels, min_side=224)


def feature_grid_png(fm: Any, k: int = 8, ncols: int = 8) -> bytes:
    """The ``k`` strongest channels of one :class:`~convlens.explain.FeatureMaps`, one shared
    colour scale (a faint tile is a weak channel), as ``explain.plot_feature_maps`` draws them."""
    from ..explain.feature_maps import mosaic

    top = fm.order[:k]
    tiles = fm.activations[top]
    w = tiles.shape[-1]
    m = mosaic(tiles, min(ncols, len(top)), gap=max(1, w // 16))
    return png(colour(m, vmin=float(tiles.min()), vmax=float(tiles.max())), min_side=96)


def thumbnail_png(pixels: Any, min_side: int = 56) -> bytes:
    """A uint8 (C, H, W) tensor -> PNG (a test image of a run)."""
    a = pixels.permute(1, 2, 0).numpy()
    return png(a[..., 0] if a.shape[-1] == 1 else a, min_side=min_side)
