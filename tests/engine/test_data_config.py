"""Data own their config: a model trained from scratch takes channels, size, mean, std and
classes from the data (real CIFAR-10 photos here), and every verb reopens the run the same way."""
from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
import torch

from convlens.engine import TrainConfig, evaluate_run, load_run_model, train


@pytest.fixture(scope="module")
def cifar_two(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real 32 px colour photos: airplane vs automobile, 150 train + 50 test each."""
    dst = tmp_path_factory.mktemp("cifar2")
    want = {(s, c): n for s, n in (("train", 150), ("test", 50)) for c in ("airplane", "automobile")}
    with tarfile.open(shared_data / "cifar10-images.tar.gz") as tar:
        for m in tar:
            parts = Path(m.name).parts
            if m.isfile() and len(parts) == 3 and want.get(parts[:2], 0) > 0:
                want[parts[:2]] -= 1
                tar.extract(m, dst, filter="data")
            if not any(want.values()):
                break
    return dst


@pytest.fixture(scope="module")
def cifar_run(cifar_two: Path, tmp_path_factory: pytest.TempPathFactory):
    cfg = TrainConfig(data=str(cifar_two), model="cnn", epochs=3, batch_size=20, val_size=40, out=str(tmp_path_factory.mktemp("r")),
                      name="cifar2", progress=False, threads=1)
    return train(cfg)


def test_a_colour_32px_folder_trains_a_3_channel_cnn_at_32px(cifar_run):
    model, meta = load_run_model(cifar_run.run.path)
    assert model.layer1[0].weight.shape[1] == 3  # RGB in: nothing was turned grey
    pcfg = meta["pretrained_cfg"]
    assert pcfg["input_size"] == (3, 32, 32) and len(pcfg["mean"]) == len(pcfg["std"]) == 3
    assert all(0.3 < m < 0.6 for m in pcfg["mean"]) and all(0.15 < s < 0.35 for s in pcfg["std"])  # measured on the photos
    assert meta["model_kwargs"] == {"in_chans": 3, "img_size": 32} and meta["classes"] == ["airplane", "automobile"]
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 2)
    assert cifar_run.test_acc > 0.65  # chance is 50%; 260 real photos, 3 epochs


def test_evaluate_reopens_the_run_at_32px_and_agrees_with_best_ckpt(cifar_run):
    res = evaluate_run(cifar_run.run.path, progress=False)
    assert res["best_by"] == "val_acc" and res["best_epoch"] == cifar_run.best_epoch
    rows = {r["epoch"]: r for r in cifar_run.history}
    for r in res["epochs"]:
        assert r["test_acc"] == pytest.approx(rows[r["epoch"]]["test_acc"], abs=1e-9)
    best = torch.load(cifar_run.run.path / "checkpoints" / "best.ckpt", weights_only=True)
    assert best["epoch"] + 1 == cifar_run.best_epoch  # Lightning counts the checkpoint's epoch from 0


def test_data_config_of_a_registered_set_is_its_own(fashion):
    dc = fashion.data_config()
    assert (dc["channels"], dc["size"], dc["mean"], dc["std"]) == (1, (28, 28), (0.2860,), (0.3530,))
    assert len(dc["classes"]) == 10
