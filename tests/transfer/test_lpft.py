"""``auto`` on a real small set unlike ImageNet (scikit-learn's 8x8 digits, upscaled, as an
image folder): it probes first, prints the expected cost, fine-tunes from the probe's head,
and its result is never below feature extraction on the same split."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convlens.transfer.lpft import expected_fine_tune_seconds
from convlens.transfer.run import TransferConfig, transfer


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 train + 6 test real digits per class, 8x8 (0..16) -> 32x32 grey PNG (nearest)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    root = tmp_path_factory.mktemp("digits")
    for c in range(10):
        idx = np.flatnonzero(d.target == c)
        for split, sel in (("train", idx[:12]), ("test", idx[12:18])):
            (root / split / str(c)).mkdir(parents=True, exist_ok=True)
            for i in sel:
                img = (d.images[i] * (255 / 16)).round().astype(np.uint8)
                Image.fromarray(img).resize((32, 32), Image.NEAREST).save(root / split / str(c) / f"{i}.png")
    return root


@pytest.mark.slow  # three runs of a real backbone: 2-5 min on 2 shared cores (about 2 min of CPU)
def test_auto_probes_first_and_never_ends_below_feature_extraction(digits_folder: Path, tmp_path: Path) -> None:
    common = {"data": str(digits_folder), "image_size": 48, "batch_size": 32, "seed": 0, "out": str(tmp_path),
              "cache_dir": str(tmp_path / "cache"), "progress": False}
    lines: list[str] = []
    fe = transfer(TransferConfig(strategy="feature-extract", name="fe", **common), log=lines.append)  # its own defaults: 13 epochs
    # one fine-tuning epoch keeps the test short; similar_threshold 0.99: the digits are far from ImageNet
    # anyway, this keeps the fine-tune branch under test
    auto = transfer(TransferConfig(strategy="auto", name="auto", epochs=1, similar_threshold=0.99, **common),
                    log=lines.append)
    text = "\n".join(lines)
    out = auto.summary["auto_outcome"]
    assert auto.decision["strategy"] == "fine-tune"
    assert "auto: linear probe on the frozen features" in text and "fine-tuning expected to take about" in text
    assert "CUDA GPU" in text and "keeping the" in text
    assert text.index("fine-tuning expected") < text.index("fine-tune: training")  # the cost is said before training
    # the kept model is the better one on validation, and the result reaches feature extraction's on test
    assert out["kept"] == ("fine-tune" if out["fine_tune_val_acc"] > out["probe_val_acc"] else "probe")
    assert max(out["fine_tune_val_acc"], out["probe_val_acc"]) == pytest.approx(
        out["fine_tune_val_acc"] if out["kept"] == "fine-tune" else out["probe_val_acc"])
    assert auto.test_acc >= fe.test_acc, (auto.test_acc, fe.test_acc, out)
    assert auto.test_acc > 0.5  # real learning: chance is 10%
    assert out["probe_test_acc"] == pytest.approx(fe.test_acc)  # the probe is the feature-extraction run
    assert out["fine_tune_seconds"] > 0 and out["probe_seconds"] > 0 and out["train_images_per_s"] > 0
    assert Path(out["probe_run"]).is_dir() and Path(out["fine_tune_run"]).is_dir()
    for run in (out["probe_run"], out["fine_tune_run"]):  # both reports were written after the verdict
        page = (Path(run) / "report.html").read_text()
        assert "auto outcome" in page and f">{out['kept']}<" in page
        assert json.loads((Path(run) / "summary.json").read_text())["auto_outcome"] == out


def test_expected_cost_formula() -> None:
    # 3 epochs x (100 train + (30 + 60) / 3 evaluation-equivalent) / 10 images/s
    assert expected_fine_tune_seconds(10.0, 3, 100, 30, 60) == pytest.approx(39.0)
