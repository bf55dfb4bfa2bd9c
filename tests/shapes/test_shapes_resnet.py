"""`convlens shapes` on ResNets: the lecture's FLOP row and where shortcuts add and pad."""
from __future__ import annotations

import pytest

from convlens.models import create_model
from convlens.shapes.residual import residual_blocks
from convlens.shapes.table import model_table

#: the lecture's (He et al. 2016, Table 1) multiply-adds per 224x224 image
LECTURE_GFLOPS = {"tv/resnet18": 1.8, "tv/resnet34": 3.6, "tv/resnet101": 7.6, "tv/resnet152": 11.3}


@pytest.mark.parametrize("name", sorted(LECTURE_GFLOPS))
def test_imagenet_resnets_match_the_lecture(name):
    macs = model_table(name, check=False).totals["macs"] / 1e9
    assert abs(macs - LECTURE_GFLOPS[name]) / LECTURE_GFLOPS[name] < 0.05, macs


def test_resnet50_is_v15_and_v1_matches_the_paper():
    """torchvision's ResNet-50 strides in the 3x3 conv ("v1.5"): 4.09 G; moving the stride
    back to the first 1x1 conv, as in the paper, gives its 3.8 G (within 5%)."""
    m = create_model("tv/resnet50")
    v15 = model_table(m, check=False).totals["macs"] / 1e9
    assert 4.0 < v15 < 4.2
    for layer in (m.net.layer2, m.net.layer3, m.net.layer4):
        layer[0].conv1.stride, layer[0].conv2.stride = (2, 2), (1, 1)
    v1 = model_table(m, check=False).totals["macs"] / 1e9
    assert abs(v1 - 3.8) / 3.8 < 0.05, v1


def test_resnet20_macs_and_residual_rows():
    t = model_table("resnet20", check=False)
    assert t.totals["params"] == 269_722
    # 40.55M multiply-adds in convolutions and fc; He et al.'s ~40.8M also counts BN and the additions
    assert t.totals["macs"] == 40_551_040
    assert abs(t.totals["macs"] - 40.8e6) / 40.8e6 < 0.01
    rows = residual_blocks(create_model("resnet20"), (3, 32, 32))
    assert [r["block"] for r in rows] == [f"layer{s}.{b}" for s in (1, 2, 3) for b in range(3)]
    pads = [r for r in rows if r["shortcut"].startswith("option A")]
    assert [(r["block"], r["input"], r["output"]) for r in pads] == [("layer2.0", [16, 32, 32], [32, 16, 16]),
                                                                     ("layer3.0", [32, 16, 16], [64, 8, 8])]
    assert all(r["shortcut"] == "identity: adds x" for r in rows if r not in pads)
    plain = residual_blocks(create_model("plain20"), (3, 32, 32))
    assert len(plain) == 9 and all(r["shortcut"].startswith("none") for r in plain)


def test_cli_prints_residual_table(capsys, monkeypatch):
    from convlens.cli import main
    from convlens.models import resolve

    built = []
    real = resolve.resolve_model
    monkeypatch.setattr(resolve, "resolve_model", lambda *a, **k: built.append(a) or real(*a, **k))
    main(["shapes", "resnet20", "--no-check"])
    assert len(built) == 1  # one model for the layer table and the residual blocks
    out = capsys.readouterr().out
    assert "residual blocks" in out and "layer3.0" in out and "16 zero channels" in out
    assert "269,722" in out
