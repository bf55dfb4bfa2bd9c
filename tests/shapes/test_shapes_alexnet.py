"""The chapter's AlexNet table, number by number, and torchvision's variant."""
from __future__ import annotations

import pytest

from convlens.shapes.alexnet import CHAPTER_TOTAL, TORCHVISION_TOTAL, alexnet_tables

# layer: (output W x H x D, weights, biases) exactly as issue 3 / the chapter lists them
CHAPTER = {
    "Input": ("227x227x3", 0, 0),
    "Conv-1": ("55x55x96", 34_848, 96),
    "MaxPool-1": ("27x27x96", 0, 0),
    "Conv-2": ("27x27x256", 614_400, 256),
    "MaxPool-2": ("13x13x256", 0, 0),
    "Conv-3": ("13x13x384", 884_736, 384),
    "Conv-4": ("13x13x384", 1_327_104, 384),
    "Conv-5": ("13x13x256", 884_736, 256),
    "MaxPool-3": ("6x6x256", 0, 0),
    "FC-1": ("4096", 37_748_736, 4_096),
    "FC-2": ("4096", 16_777_216, 4_096),
    "FC-3": ("1000", 4_096_000, 1_000),
}


@pytest.fixture(scope="module")
def tables():
    return alexnet_tables(check=True)


def test_every_number_of_the_chapter_table(tables):
    rows = tables["chapter"]["rows"]
    assert [r["layer"] for r in rows] == list(CHAPTER)
    for r in rows:
        out, w, b = CHAPTER[r["layer"]]
        assert (r["output"], r["weights"], r["biases"], r["params"]) == (out, w, b, w + b), r["layer"]
    assert rows[1]["params"] == 34_944
    assert tables["chapter"]["totals"]["params"] == CHAPTER_TOTAL == 62_378_344
    assert sum(w + b for _, w, b in CHAPTER.values()) == 62_378_344


def test_arithmetic_shown_per_layer(tables):
    rows = {r["layer"]: r for r in tables["chapter"]["rows"]}
    assert rows["Conv-1"]["arithmetic"] == "(227-11+2*0)/4+1 = 55"
    assert rows["Conv-1"]["weights_arithmetic"] == "11*11*3*96"
    assert rows["Conv-2"]["arithmetic"] == "(27-5+2*2)/1+1 = 27"
    assert rows["MaxPool-3"]["arithmetic"] == "(13-3+2*0)/2+1 = 6"
    assert rows["FC-1"]["weights_arithmetic"] == "9216*4096"


def test_receptive_fields_are_the_published_ones(tables):
    # Araujo, Norris & Sim, "Computing receptive fields of CNNs" (Distill 2019): AlexNet 195
    rf = [r["receptive_field"] for r in tables["chapter"]["rows"] if r["layer"][0] in "CM"]
    assert rf == [11, 19, 51, 67, 99, 131, 163, 195]


def test_torchvision_variant(tables):
    tv = tables["torchvision"]
    assert tv["totals"]["params"] == TORCHVISION_TOTAL == 61_100_840
    assert tables["difference"] == 62_378_344 - 61_100_840 == 1_277_504
    rows = {r["layer"]: r for r in tv["rows"]}
    assert rows["Conv-1"]["output"] == "55x55x64" and rows["Conv-1"]["params"] == 23_296
    assert rows["Conv-1"]["arithmetic"] == "(224-11+2*2)/4+1 = 55.25 -> 55"  # torchvision floors
    assert rows["AdaptiveAvgPool-1"]["output"] == "6x6x256"


def test_cross_checks_agree(tables):
    for key in ("chapter", "torchvision"):
        checks = tables[key]["checks"]
        assert {c["library"] for c in checks} == {"torchinfo", "fvcore"}
        assert all(c["match"] for c in checks), checks
    by = {c["what"]: c for c in tables["chapter"]["checks"]}
    assert by["conv MACs"]["reference"] == 1_076_634_144  # fvcore's own count


def test_paper_224_is_refused(tables):
    assert tables["paper_224"].startswith("W2 = (224 - 11 + 2*0)/4 + 1 = 213/4 + 1 = 54.25 is not a whole number")
