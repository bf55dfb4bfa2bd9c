"""Small images are fine-tuned at SMALL_IMAGE_INPUT_PX unless --image-size says otherwise (issue 15, part 5)."""
from __future__ import annotations

import json
from pathlib import Path

from convlens.transfer import TransferConfig, transfer
from convlens.transfer.config import SMALL_IMAGE_INPUT_PX, with_input_size


def test_the_rule_fine_tune_only_small_only_unless_given() -> None:
    said: list[str] = []
    cfg = TransferConfig(strategy="fine-tune")
    assert with_input_size(cfg, lambda: 28, said.append).image_size == SMALL_IMAGE_INPUT_PX
    assert len(said) == 1 and "28-pixel images" in said[0] and "--image-size 224" in said[0]
    assert with_input_size(cfg, lambda: 500, said.append).image_size is None  # photos keep the weights' size
    assert with_input_size(TransferConfig(strategy="fine-tune", image_size=224), lambda: 28, said.append).image_size == 224
    assert with_input_size(TransferConfig(strategy="feature-extract"), lambda: 28, said.append).image_size is None
    assert with_input_size(TransferConfig(strategy="auto"), lambda: 28, said.append).image_size is None
    assert len(said) == 1


def test_fashion_mnist_fine_tune_runs_at_96_px_and_records_it(tmp_path: Path) -> None:
    said: list[str] = []
    res = transfer(TransferConfig(data="fashion-mnist", strategy="fine-tune", unfreeze=1, epochs=1, limit_train=60,
                                  limit_test=30, batch_size=16, out=str(tmp_path), name="small", progress=False,
                                  cache_dir=str(tmp_path / "cache")), log=said.append)
    config = json.loads((res.run.path / "config.json").read_text())["config"]["transfer"]
    assert config["image_size"] == SMALL_IMAGE_INPUT_PX
    assert any("28-pixel images" in m for m in said)
    assert res.model.pretrained_cfg["input_size"][-1] == SMALL_IMAGE_INPUT_PX
