"""The chapter's worked examples: every number, computed by torch."""
from __future__ import annotations

import pytest
import torch

from convlens.errors import ConvlensError
from convlens.shapes.demos import plot_demo, run_demo


def test_1d():
    r = run_demo("1d")
    assert r["arrays"]["output"] == [1.0, 1.0, 1.0]
    assert r["arrays"]["output (padding 1)"] == [0.75, 1.0, 1.0, 1.0, 0.75]
    assert r["arrays"]["step output"] == [0.25, 0.75, 1.0, 1.0]
    assert r["steps"][0] == "y[0] = 1*0.25 + 1*0.5 + 1*0.25 = 1"


def test_pool():
    r = run_demo("pool")
    assert r["arrays"]["input"] == [[1, 3, 2, 1], [2, 9, 1, 1], [1, 3, 2, 3], [5, 6, 1, 2]]
    assert r["arrays"]["max pooling"] == [[9, 2], [6, 3]]
    assert r["arrays"]["average pooling"] == [[3.75, 1.25], [3.75, 2]]


def test_padding_keeps_4x4():
    r = run_demo("padding")
    out = torch.tensor(r["arrays"]["output, padding 1"])
    assert out.shape == (4, 4)
    assert torch.tensor(r["arrays"]["output, no padding"]).shape == (2, 2)
    assert torch.tensor(r["arrays"]["padded input"]).shape == (6, 6)
    # a 3x3 box sum: the corner sees 1+2+5+6 and five zeros of the border
    assert out[0, 0] == 14 and out[1, 1] == 54 and r["arrays"]["output, no padding"] == [[54, 63], [90, 99]]


def test_2d():
    r = run_demo("2d")
    assert r["arrays"]["output"] == [[4, 3, 4], [2, 4, 3], [2, 3, 4]]
    assert r["arrays"]["output (stride 2)"] == [[4, 4], [2, 4]]


def test_1x1_reduces_channels_googlenet():
    r = run_demo("1x1")
    g = r["googlenet"]
    assert g["reduced_shape"] == [16, 28, 28] and g["output_shape"] == [32, 28, 28]
    assert g["direct_macs"] == 28 * 28 * 32 * 5 * 5 * 192 == 120_422_400
    assert g["bottleneck_macs"] == 28 * 28 * 16 * 192 + 28 * 28 * 32 * 5 * 5 * 16 == 12_443_648
    assert g["direct_params"] == 5 * 5 * 192 * 32 + 32 and g["bottleneck_params"] == 192 * 16 + 16 + 5 * 5 * 16 * 32 + 32
    x = torch.tensor([r["arrays"][f"input channel {c}"] for c in range(3)])
    w = torch.tensor(r["arrays"]["1x1 filter (one weight per channel)"])
    assert torch.allclose(torch.tensor(r["arrays"]["output (one channel)"]), torch.einsum("chw,c->hw", x, w))


def test_3d_input_gives_one_2d_map_per_filter(shared_data):
    r = run_demo("3d")
    assert r["sum_over_channels_ok"]
    maps = [torch.tensor(r["arrays"][f"map of filter {k}"]) for k in range(2)]
    assert all(m.shape == (2, 2) for m in maps)
    x = torch.tensor([r["arrays"][f"input channel {c}"] for c in range(3)])
    w0 = torch.tensor([r["arrays"][f"filter 0 channel {c}"] for c in range(3)])
    assert maps[0][0, 0] == (x[:, :3, :3] * w0).sum()
    r = run_demo("3d", image=shared_data / "images" / "cat.jpg")
    assert r["image"].shape[0] == 3 and r["image_maps"].shape == (2, *r["image"].shape[1:])
    # the "red minus green/blue" filter responds more on the reddest pixels than on the bluest
    img, red = r["image"], r["image_maps"][1]
    redness = img[0] - img[1:].mean(0)
    assert red.flatten()[redness.flatten().argmax()] > red.flatten()[redness.flatten().argmin()]


def test_plot_and_unknown_demo(tmp_path):
    fig = plot_demo(run_demo("pool"))
    assert len(fig.axes) == 3
    fig.savefig(tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ConvlensError, match="unknown demo"):
        run_demo("4d")
    with pytest.raises(ConvlensError, match="--image"):
        run_demo("pool", image="x.png")
