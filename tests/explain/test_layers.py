"""Choosing layers: stages low -> high, the CAM target, names and indices, models without convs."""
from __future__ import annotations

import pytest

from convlens.errors import ConvlensError
from convlens.explain import cam_target_layer, count_hooks, default_feature_layers, resolve_layers, stage_layers, trace_layers
from convlens.models import create_model


@pytest.mark.parametrize("name, stages, target", [
    ("efficientnet_lite0", ["blocks.0", "blocks.1", "blocks.2", "blocks.4", "bn2"], "bn2"),
    ("tv/resnet18", ["net.relu", "net.layer1", "net.layer2", "net.layer3", "net.layer4"], "net.layer4"),
    ("resnet18", ["act1", "layer1", "layer2", "layer3", "layer4"], "layer4"),
    ("cnn", ["layer1.2", "layer1", "layer2.2", "layer2"], "layer2"),
    ("fashion_vgg", ["features.0.0", "features.2.0", "features"], "features"),  # its pooling follows the conv
])
def test_stages_and_cam_target(name, stages, target):
    m = create_model(name)
    size = m.pretrained_cfg["input_size"]
    assert stage_layers(m, size) == stages
    assert cam_target_layer(m, size) == target
    low, mid, high = default_feature_layers(m, size)
    assert (low, high) == (stages[0], stages[-1]) and mid in stages[1:-1]
    assert count_hooks(m) == 0  # the trace removed its hooks


def test_stage_resolutions_decrease_low_to_high():
    m = create_model("efficientnet_lite0")
    shapes = {li.name: li.shape for li in trace_layers(m, (3, 224, 224))}
    sides = [shapes[n][1] for n in stage_layers(m, (3, 224, 224))]
    assert sides == [112, 56, 28, 14, 7]
    assert shapes["bn2"] == (1280, 7, 7)


def test_layers_by_name_and_index():
    m = create_model("cnn")
    size = (1, 28, 28)
    assert resolve_layers(m, size, ["0", "-1", "layer1.0"]) == ["layer1.2", "layer2", "layer1.0"]
    with pytest.raises(ConvlensError, match=r"--layers 'layer9': no such layer.*did you mean .*layer2.*valid layers are layer1.0") as exc:
        resolve_layers(m, size, ["layer9"])
    assert "\n" not in str(exc.value)
    with pytest.raises(ConvlensError, match="stage index out of range; the 4 stages are 0=layer1.2"):
        resolve_layers(m, size, ["7"])
    # fc1 has no feature map: not a valid feature-map layer
    with pytest.raises(ConvlensError, match="'fc1': no such layer with a feature map"):
        resolve_layers(m, size, ["fc1"])


def test_big_models_list_stages_not_hundreds_of_names():
    m = create_model("efficientnet_lite0")
    with pytest.raises(ConvlensError, match=r"stages are \(of 261 valid layers.*blocks.0, blocks.1, blocks.2, blocks.4, bn2$"):
        resolve_layers(m, (3, 224, 224), ["block.9"])


def test_dnn_has_no_conv_layer_and_says_so():
    m = create_model("dnn")
    for fn in (stage_layers, cam_target_layer):
        with pytest.raises(ConvlensError, match="model 'dnn' has no convolutional layer .* need a CNN"):
            fn(m, (1, 28, 28))
