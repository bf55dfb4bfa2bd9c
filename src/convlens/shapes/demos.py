"""The chapter's worked examples of convolution and pooling, computed with torch.

Each ``demo_*`` function returns a plain dict: ``title``, ``notes`` (lines of explanation),
``arrays`` (name -> nested lists, every one produced by a torch op), ``steps`` (the
arithmetic of chosen output cells) and ``panels`` (which arrays :func:`plot_demo` draws).
PyTorch's "convolution" is a cross-correlation (the filter is not flipped), as in the chapter.
"""
from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConvlensError


def _l(t: torch.Tensor) -> list:
    """Nested lists of floats rounded to 6 decimals."""
    return [round(v, 6) for v in t.tolist()] if t.dim() == 1 else [_l(r) for r in t]


def _cell_sum(patch: torch.Tensor, kernel: torch.Tensor) -> str:
    terms = [f"{a:g}*{b:g}" for a, b in zip(patch.flatten().tolist(), kernel.flatten().tolist())]
    return " + ".join(terms) + f" = {float((patch * kernel).sum()):g}"


def demo_1d() -> dict[str, Any]:
    x = torch.tensor([1.0, 1, 1, 1, 1])
    w = torch.tensor([0.25, 0.5, 0.25])
    y = F.conv1d(x.view(1, 1, -1), w.view(1, 1, -1)).flatten()
    y_pad = F.conv1d(x.view(1, 1, -1), w.view(1, 1, -1), padding=1).flatten()
    step = torch.tensor([0.0, 0, 1, 1, 1, 1])
    y_step = F.conv1d(step.view(1, 1, -1), w.view(1, 1, -1)).flatten()
    return {
        "demo": "1d", "title": "1D convolution: input [1,1,1,1,1], filter [0.25,0.5,0.25]",
        "notes": ["output length (W1 - F + 2P)/S + 1 = (5 - 3 + 0)/1 + 1 = 3",
                  "the weights sum to 1, so a constant signal passes unchanged: a smoothing filter",
                  "with padding 1 the output keeps length 5 but the ends see a zero: 0.75",
                  "on a step [0,0,1,1,1,1] the filter blurs the edge: [0.25,0.75,1,1]"],
        "arrays": {"input": _l(x), "filter": _l(w), "output": _l(y), "output (padding 1)": _l(y_pad),
                   "step": _l(step), "step output": _l(y_step)},
        "steps": [f"y[{i}] = {_cell_sum(x[i:i + 3], w)}" for i in range(len(y))],
        "panels": ["input", "filter", "output", "output (padding 1)", "step", "step output"],
    }


def demo_2d() -> dict[str, Any]:
    x = torch.tensor([[1.0, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]])
    w = torch.tensor([[1.0, 0, 1], [0, 1, 0], [1, 0, 1]])
    y = F.conv2d(x.view(1, 1, 5, 5), w.view(1, 1, 3, 3))[0, 0]
    y2 = F.conv2d(x.view(1, 1, 5, 5), w.view(1, 1, 3, 3), stride=2)[0, 0]
    return {
        "demo": "2d", "title": "2D convolution: 5x5 input, 3x3 filter, stride 1",
        "notes": ["the filter slides over the input; each output cell is the sum of the element-wise product",
                  "W2 = (5 - 3 + 2*0)/1 + 1 = 3: a 3x3 feature map",
                  "with stride 2: W2 = (5 - 3)/2 + 1 = 2"],
        "arrays": {"input": _l(x), "filter": _l(w), "output": _l(y), "output (stride 2)": _l(y2)},
        "steps": [f"y[0,0] = {_cell_sum(x[:3, :3], w)}", f"y[1,2] = {_cell_sum(x[1:4, 2:5], w)}"],
        "panels": ["input", "filter", "output", "output (stride 2)"],
    }


def demo_padding() -> dict[str, Any]:
    x = torch.arange(1.0, 17).view(4, 4)
    w = torch.ones(3, 3)
    x_pad = F.pad(x, (1, 1, 1, 1))
    y = F.conv2d(x.view(1, 1, 4, 4), w.view(1, 1, 3, 3), padding=1)[0, 0]
    y_valid = F.conv2d(x.view(1, 1, 4, 4), w.view(1, 1, 3, 3))[0, 0]
    return {
        "demo": "padding", "title": "zero padding: a 3x3 convolution keeps a 4x4 input at 4x4",
        "notes": ["without padding: W2 = (4 - 3 + 2*0)/1 + 1 = 2 (the map shrinks by F - 1)",
                  "with P = (F - 1)/2 = 1 zero border: W2 = (4 - 3 + 2*1)/1 + 1 = 4",
                  "the filter sums its 3x3 window: a corner output adds five zeros of the border"],
        "arrays": {"input": _l(x), "padded input": _l(x_pad), "filter": _l(w),
                   "output, padding 1": _l(y), "output, no padding": _l(y_valid)},
        "steps": [f"y[0,0] = {' + '.join(f'{v:g}' for v in x_pad[:3, :3].flatten().tolist())} = {float(y[0, 0]):g}"],
        "panels": ["input", "padded input", "output, padding 1", "output, no padding"],
    }


def demo_pool() -> dict[str, Any]:
    x = torch.tensor([[1.0, 3, 2, 1], [2, 9, 1, 1], [1, 3, 2, 3], [5, 6, 1, 2]])
    mx = F.max_pool2d(x.view(1, 1, 4, 4), 2, 2)[0, 0]
    av = F.avg_pool2d(x.view(1, 1, 4, 4), 2, 2)[0, 0]
    steps = []
    for i in range(2):
        for j in range(2):
            win = x[2 * i:2 * i + 2, 2 * j:2 * j + 2].flatten().tolist()
            steps.append(f"window ({i},{j}) = [{', '.join(f'{v:g}' for v in win)}]: max {max(win):g}, mean {sum(win):g}/4 = {sum(win) / 4:g}")
    return {
        "demo": "pool", "title": "pooling, size 2, stride 2",
        "notes": ["W2 = (4 - 2)/2 + 1 = 2, depth unchanged, no parameters",
                  "max pooling keeps the strongest response of each window, average pooling its mean"],
        "arrays": {"input": _l(x), "max pooling": _l(mx), "average pooling": _l(av)},
        "steps": steps, "panels": ["input", "max pooling", "average pooling"],
    }


def demo_1x1(seed: int = 0) -> dict[str, Any]:
    from .table import layer_table

    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 4, (3, 2, 2), generator=g).float()
    w = torch.tensor([0.5, -1.0, 2.0])
    y = F.conv2d(x.unsqueeze(0), w.view(1, 3, 1, 1))[0, 0]
    t_direct = layer_table(nn.Sequential(nn.Conv2d(192, 32, 5, padding=2)), (192, 28, 28))
    t_bottle = layer_table(nn.Sequential(nn.Conv2d(192, 16, 1), nn.Conv2d(16, 32, 5, padding=2)), (192, 28, 28))
    md, mb = t_direct.totals["macs"], t_bottle.totals["macs"]
    return {
        "demo": "1x1", "title": "1x1 convolution: mixing channels, reducing depth (GoogLeNet's bottleneck)",
        "notes": ["a 1x1 filter is one weight per input channel: each output pixel is a weighted sum of that pixel's channels",
                  "K filters of 1x1 turn W x H x D1 into W x H x K: fewer channels for the expensive layer after it",
                  f"28x28x192 -> 5x5 conv, 32 filters: {md:,} MACs, {t_direct.totals['params']:,} parameters",
                  f"28x28x192 -> 1x1 conv to 16 -> 5x5 conv, 32 filters: {mb:,} MACs, {t_bottle.totals['params']:,} parameters "
                  f"({md / mb:.1f}x fewer MACs); both give {'x'.join(map(str, t_bottle.rows[-1]['output_shape'][::-1]))}"],
        "arrays": {**{f"input channel {c}": _l(x[c]) for c in range(3)}, "1x1 filter (one weight per channel)": _l(w),
                   "output (one channel)": _l(y)},
        "steps": [f"y[0,0] = {_cell_sum(x[:, 0, 0], w)}"],
        "panels": ["input channel 0", "input channel 1", "input channel 2", "output (one channel)"],
        "googlenet": {"direct_macs": md, "bottleneck_macs": mb, "direct_params": t_direct.totals["params"],
                      "bottleneck_params": t_bottle.totals["params"], "output_shape": t_bottle.rows[-1]["output_shape"],
                      "reduced_shape": t_bottle.rows[0]["output_shape"]},
    }


def _synthetic_colour_image(size: int = 64) -> torch.Tensor:
    """A (3, size, size) image in [0, 1]: a red disc and a blue square on a grey gradient."""
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    img = (0.3 + 0.4 * xx / size).expand(3, size, size).clone()
    disc = (xx - size * 0.32) ** 2 + (yy - size * 0.35) ** 2 < (size * 0.2) ** 2
    img[:, disc] = torch.tensor([0.9, 0.15, 0.1]).view(3, 1)
    img[:, int(size * .55):int(size * .85), int(size * .5):int(size * .85)] = torch.tensor([0.1, 0.2, 0.85]).view(3, 1, 1)
    return img


def _read_image(path: str | os.PathLike, size: int = 128) -> torch.Tensor:
    from ..data.folders import open_image

    im = open_image(path, channels=3)
    im.thumbnail((size, size))
    return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 255


def demo_3d(image: str | os.PathLike | None = None, seed: int = 0) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 3, (3, 4, 4), generator=g).float()
    w = torch.randint(-1, 2, (2, 3, 3, 3), generator=g).float()
    y = F.conv2d(x.unsqueeze(0), w)[0]
    per_channel = torch.stack([sum(F.conv2d(x[c].view(1, 1, 4, 4), w[k, c].view(1, 1, 3, 3))[0, 0] for c in range(3)) for k in range(2)])
    img = _read_image(image) if image is not None else _synthetic_colour_image()
    sobel = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    filters = torch.stack([sobel.expand(3, 3, 3) / 3,  # vertical edges, whatever the colour
                           torch.tensor([1.0, -0.5, -0.5]).view(3, 1, 1).expand(3, 3, 3) / 9])  # "red minus the rest"
    maps = F.conv2d(img.unsqueeze(0), filters, padding=1)[0]
    c, h, wd = img.shape
    return {
        "demo": "3d", "title": "a 3D input (colour image) and a 2D convolution: one 2D map per filter",
        "notes": ["a filter spans the whole depth: on a W1 x H1 x 3 input a 3x3 filter is 3x3x3 (27 weights + 1 bias)",
                  "it slides only over width and height; the three channel products are summed into one number",
                  "so K filters give K two-dimensional maps: 4x4x3 input, 2 filters of 3x3x3 -> 2x2x2",
                  f"colour image {wd}x{h}x{c}, filters 'vertical edges' and 'red minus green/blue' (padding 1) -> "
                  f"{maps.shape[2]}x{maps.shape[1]}x{maps.shape[0]}",
                  f"check: each map equals the sum over channels of 2D convolutions: "
                  f"{bool(torch.allclose(y, per_channel))}"],
        "arrays": {**{f"input channel {ch}": _l(x[ch]) for ch in range(3)},
                   **{f"filter {k} channel {ch}": _l(w[k, ch]) for k in range(2) for ch in range(3)},
                   "map of filter 0": _l(y[0]), "map of filter 1": _l(y[1])},
        "steps": ["map0[0,0] = " + " + ".join(f"({_cell_sum(x[ch, :3, :3], w[0, ch]).split(' = ')[-1]})" for ch in range(3))
                  + f" = {float(y[0, 0, 0]):g}"],
        "panels": ["input channel 0", "input channel 1", "input channel 2", "map of filter 0", "map of filter 1"],
        "image": img, "image_maps": maps, "sum_over_channels_ok": bool(torch.allclose(y, per_channel)),
    }


DEMOS: dict[str, Callable[..., dict[str, Any]]] = {"1d": demo_1d, "2d": demo_2d, "3d": demo_3d, "1x1": demo_1x1,
                                                    "padding": demo_padding, "pool": demo_pool}


def run_demo(name: str, **kwargs: Any) -> dict[str, Any]:
    """Run one demo by name (``1d``, ``2d``, ``3d``, ``1x1``, ``padding``, ``pool``)."""
    if name not in DEMOS:
        raise ConvlensError(f"unknown demo {name!r}: choose one of {', '.join(DEMOS)}")
    if name != "3d" and kwargs.get("image") is not None:
        raise ConvlensError("--image is only used by `convlens conv demo 3d`")
    return DEMOS[name](**{k: v for k, v in kwargs.items() if v is not None})


def plot_demo(result: dict[str, Any]) -> Any:
    """The demo's arrays as annotated heat maps (and, for ``3d``, the colour image and its
    two feature maps). Returns a matplotlib ``Figure``."""
    from ..figures import headless_backend

    headless_backend()
    import matplotlib.pyplot as plt

    panels = [(p, np.atleast_2d(np.asarray(result["arrays"][p], dtype=float))) for p in result["panels"]]
    extra = []
    if "image" in result:
        extra = [("colour image", result["image"].permute(1, 2, 0).numpy()),
                 ("map: vertical edges", result["image_maps"][0].numpy()), ("map: red minus green/blue", result["image_maps"][1].numpy())]
    n = len(panels) + len(extra)
    fig, axes = plt.subplots(1, n, figsize=(2.3 * n, 2.8), squeeze=False)
    for ax, (title, a) in zip(axes[0], panels):
        ax.imshow(a, cmap="viridis")
        if a.size <= 64:
            for (i, j), v in np.ndenumerate(a):
                ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=8, color="white" if v < (a.max() + a.min()) / 2 else "black")
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax, (title, a) in zip(axes[0][len(panels):], extra):
        lim = float(np.abs(a).max()) or 1.0
        ax.imshow(np.clip(a, 0, 1), interpolation="nearest") if a.ndim == 3 else ax.imshow(a, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.suptitle(result["title"], fontsize=10)
    fig.tight_layout()
    return fig
