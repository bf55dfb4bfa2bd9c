"""Feature maps ranked by strength; filters drawn as they are."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from convlens.errors import ConvlensError
from convlens.explain import compute_feature_maps, get_filters, plot_feature_maps, plot_filters, rank_channels
from convlens.explain.filters import default_filter_layers, filter_tiles
from convlens.models import create_model


def test_rank_channels_by_mean_absolute_activation():
    a = torch.zeros(4, 3, 3)
    a[0] = 0.1
    a[1] = -2.0          # strong negative response counts (|A|)
    a[2, 0, 0] = 5.0     # one hot pixel: mean 5/9
    a[3] = 1.0
    order, strength = rank_channels(a)
    assert list(order) == [1, 3, 2, 0]
    np.testing.assert_allclose(strength, [0.1, 2.0, 5 / 9, 1.0], rtol=1e-6)


def test_feature_maps_of_the_trained_model_on_the_cat(lite0, cat_path):
    fms = compute_feature_maps(lite0, cat_path)
    assert [fm.layer for fm in fms] == ["blocks.0", "blocks.2", "bn2"]
    assert [fm.activations.shape for fm in fms] == [(16, 112, 112), (40, 28, 28), (1280, 7, 7)]
    for fm in fms:
        s = np.abs(fm.activations).mean(axis=(1, 2))
        assert np.all(np.diff(s[fm.order]) <= 1e-6)
    # the chapter's "first 16 channels" are not the strongest ones at the top layer
    assert set(fms[2].top(16)) != set(range(16))
    fig = plot_feature_maps(fms, k=16)
    labels = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert len(labels) == 48 and labels[0].startswith(f"blocks.0:{fms[0].order[0]}\n")
    assert f"bn2:{fms[2].order[15]}" in labels[47]
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_first_layer_filters_are_rgb_tiles():
    conv = nn.Conv2d(3, 2, 3, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0] = 1.0   # a pure-red kernel
        conv.weight[1, 2] = -0.5  # a weaker, negative-blue kernel
    model = nn.Sequential(conv, nn.ReLU())
    f = get_filters(model)
    assert f.is_first and f.layer == "0" and list(f.order) == [0, 1]
    tiles, ncols, kind = filter_tiles(f)
    assert kind == "RGB" and tiles.shape == (2, 3, 3, 3)
    np.testing.assert_allclose(tiles[0, 1, 1], [1.0, 0.5, 0.5])    # red at full scale, grey = 0
    np.testing.assert_allclose(tiles[1, 1, 1], [0.5, 0.5, 0.25])   # blue below grey


def test_filters_of_real_models():
    lite = create_model("efficientnet_lite0", pretrained=True)
    assert default_filter_layers(lite)[0] == "conv_stem"
    f = get_filters(lite)
    assert f.weight.shape == (32, 3, 3, 3)
    tiles, _, kind = filter_tiles(get_filters(lite, "blocks.6.0.conv_dw"))
    assert kind == "depthwise" and tiles.shape == (32, 3, 3)
    cnn = create_model("cnn")
    assert filter_tiles(get_filters(cnn))[2] == "grey"
    tiles, ncols, kind = filter_tiles(get_filters(cnn, "layer2.0"), max_filters=4, max_inputs=8)
    assert kind == "per-channel" and tiles.shape == (32, 3, 3) and ncols == 8
    fig = plot_filters(cnn)
    assert len(fig.axes) == 2
    import matplotlib.pyplot as plt

    plt.close(fig)
    with pytest.raises(ConvlensError, match="not a conv layer; conv layers are layer1.0, layer2.0"):
        get_filters(cnn, "fc1")
    with pytest.raises(ConvlensError, match="model 'dnn' has no convolutional layer"):
        get_filters(create_model("dnn"))
