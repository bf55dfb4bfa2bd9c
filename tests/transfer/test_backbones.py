"""Backbones: real weights, their own preprocessing, stages, and clear errors."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from convlens.errors import ConvlensError
from convlens.transfer.backbones import load_backbone, resolve_unfreeze
from convlens.transfer.features import pooled_features


def test_weights_load_and_classify_cat_as_a_cat(shared_data: Path) -> None:
    """ImageNet head kept (num_classes=None): the chapter's cat.jpg -> tabby/tiger/Egyptian cat."""
    from convlens.data.folders import load_image

    b = load_backbone("efficientnet_lite0", num_classes=None)
    assert b.data_config["mean"] == (0.5, 0.5, 0.5) and b.data_config["interpolation"] == "bicubic"
    assert (b.preprocess.image_size, b.preprocess.crop_pct) == (224, 0.875)
    x = load_image(shared_data / "images" / "cat.jpg", b.preprocess).unsqueeze(0)
    feats = pooled_features(b.model, x, b.mean, b.std)
    with torch.no_grad():
        logits = b.model.classifier(feats.clone())
    top3 = logits.topk(3).indices[0].tolist()
    assert top3[0] in (281, 282, 285) and set(top3) <= {281, 282, 283, 285, 287}


def test_stages_and_unfreeze_choices(lite0) -> None:
    names = [s for s, _ in lite0.stages]
    assert names[0] == "conv_stem+bn1" and names[-1] == "classifier" and len(names) == 9
    last2 = resolve_unfreeze(lite0.model, lite0.stages, unfreeze=2)
    assert any(n.startswith("blocks.5.") for n in last2) and any(n.startswith("conv_head") for n in last2)
    assert not any(n.startswith("blocks.4.") for n in last2) and "classifier.weight" in last2
    head_only = resolve_unfreeze(lite0.model, lite0.stages, unfreeze=0)
    assert head_only == ["classifier.weight", "classifier.bias"]
    everything = resolve_unfreeze(lite0.model, lite0.stages, unfreeze=-1)
    assert len(everything) == len(list(lite0.model.parameters()))
    frm = resolve_unfreeze(lite0.model, lite0.stages, unfreeze_from="blocks.6")
    assert frm[0].startswith("blocks.6.0.") and not any(n.startswith("blocks.5") for n in frm)
    with pytest.raises(ConvlensError, match="--unfreeze-from 'block5_conv1'.*stages are"):
        resolve_unfreeze(lite0.model, lite0.stages, unfreeze_from="block5_conv1")


def test_offline_timm_weights_are_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as hf

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf, "HF_HUB_OFFLINE", True)  # read at import time: the env var alone comes too late
    with pytest.raises(ConvlensError) as err:
        load_backbone("resnet18", num_classes=2)
    msg = str(err.value)
    assert "\n" not in msg and "--weights FILE" in msg


def test_weights_file_loads_and_names_itself(tmp_path: Path) -> None:
    import timm

    ref = timm.create_model("mobilenetv3_small_050", num_classes=3)
    torch.save(ref.state_dict(), tmp_path / "w.pth")
    b = load_backbone("mobilenetv3_small_050", num_classes=3, weights=tmp_path / "w.pth")
    assert b.weights_id.startswith("file:")
    for (k, v), (k2, v2) in zip(ref.state_dict().items(), b.model.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    with pytest.raises(ConvlensError, match="no such file"):
        load_backbone("mobilenetv3_small_050", weights=tmp_path / "missing.pth")
