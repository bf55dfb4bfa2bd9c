"""Silently wrong no more: a diverging run stops in one line and never saves a non-finite
checkpoint; one class is refused; a test split missing classes warns; a checkpoint whose
metadata cannot name its outputs is one line; CONVLENS_THREADS reaches train."""
from __future__ import annotations

import math
import shutil

import pytest
import torch
from _robust_cli import one_line_error, run_cli
from torch import nn

from convlens.engine.guards import DataWarning, TrainingDiverged, check_divergence

TINY = ["--limit-train", "500", "--limit-test", "200", "--val-size", "100", "--no-progress"]


def _tiny_cfg(tmp_path, **over):
    from convlens.engine import TrainConfig

    kw = {"model": "dnn", "epochs": 1, "limit_train": 500, "limit_test": 200, "val_size": 100, "progress": False,
          "out": str(tmp_path / "runs"), "precision": "32-true", "threads": 1}
    kw.update(over)
    return TrainConfig(**kw)


# ---- divergence ---------------------------------------------------------------------------
def test_sgd_at_lr_1e6_stops_in_one_line_and_leaves_nothing(tmp_path):
    """Before: NaN from epoch 1, an all-NaN best.ckpt "best at epoch 1", test_acc 0.102, exit 0."""
    proc = run_cli(["train", "--model", "dnn", *TINY, "--epochs", "2", "--optimizer", "sgd", "--lr", "1e6", "--out", "runs"],
                   tmp_path)
    line = one_line_error(proc)
    assert "diverged in epoch 1" in line and "lower --lr" in line, line
    assert not any((tmp_path / "runs").iterdir())  # no folder holding only its record


def test_lr_inf_in_python_is_refused_in_one_line_before_training(tmp_path):
    from convlens.errors import ConvlensError

    # the config refuses it (options.opt: finite numbers only), so no run folder is ever made
    with pytest.raises(ConvlensError, match=r"^--lr inf: must be a finite number$"):
        _tiny_cfg(tmp_path, lr=math.inf)
    assert not list(tmp_path.glob("**/config.json"))


class BreaksInEpoch2(nn.Module):
    """The chapter DNN, whose first weight turns NaN at its 5th training step: the first step
    of epoch 2 with 400 training images in batches of 100."""

    def __init__(self):
        super().__init__()
        from convlens.models import create_model

        self.inner = create_model("dnn")
        self.pretrained_cfg = self.inner.pretrained_cfg
        self.convlens_name = "dnn"
        self.steps = 0

    def forward(self, x):
        if self.training:
            self.steps += 1
            if self.steps == 5:
                with torch.no_grad():
                    next(self.parameters()).fill_(float("nan"))
        return self.inner(x)


def test_divergence_keeps_the_finite_epochs_and_never_saves_nan_as_best(tmp_path):
    from convlens.engine import train

    with pytest.raises(TrainingDiverged, match="epoch 2") as info:
        train(_tiny_cfg(tmp_path, epochs=3, name="breaks", batch_size=100), model=BreaksInEpoch2())
    assert "lower --lr" in str(info.value)
    ckpts = tmp_path / "runs" / "breaks" / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["best.ckpt", "epoch=001.ckpt", "last.ckpt"]
    best = torch.load(ckpts / "best.ckpt", weights_only=True)
    assert best["epoch"] == 0 and all(torch.isfinite(v).all() for v in best["state_dict"].values() if v.is_floating_point())


def test_graph_lr_1e6_stops_instead_of_segfaulting(tmp_path):
    """Before: exit 139 in the t-SNE of the (dead or NaN) hidden features."""
    proc = run_cli(["graph", "train", "--data", "cora", "--lr", "1e6", "--out", "g"], tmp_path)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    last = proc.stderr.strip().splitlines()[-1].split("\r")[-1]
    assert "Traceback" not in proc.stderr and "training diverged in epoch" in last and "lower --lr" in last, last
    assert not (tmp_path / "g").exists()


def test_check_divergence_rules():
    check_divergence(torch.tensor(2.3), 1, 1e-3, num_classes=10)  # a fresh network's loss: fine
    check_divergence(900.0, 1, 1e-3, num_classes=2)  # large, but under 1000 x max(ln 2, 1)
    with pytest.raises(TrainingDiverged, match="nan"):
        check_divergence(torch.tensor(float("nan")), 3, 0.1)
    with pytest.raises(TrainingDiverged, match="over 1000x"):
        check_divergence(3e17, 2, 1000.0, num_classes=10)  # Adam at lr 1000 in the issue
    bn = nn.BatchNorm1d(4)
    bn.running_var[0] = float("inf")
    with pytest.raises(TrainingDiverged, match="running_var"):
        check_divergence(0.5, 4, 0.1, model=bn)


# ---- classes ------------------------------------------------------------------------------
@pytest.fixture
def one_class_folder(shared_data, tmp_path):
    root = tmp_path / "one-class"
    for split in ("train", "test"):
        (root / split / "Cat").mkdir(parents=True)
        for f in sorted((shared_data / "catanddog" / split / "Cat").iterdir())[:6]:
            shutil.copy(f, root / split / "Cat" / f.name)
    return root


@pytest.mark.parametrize("verb", [["train", "--model", "dnn", "--val-size", "0"], ["transfer", "--no-progress"]])
def test_one_class_is_refused(verb, one_class_folder, tmp_path):
    """Before: transfer reported 'test accuracy 100.00%'; train wrote test_acc 1.0, then a traceback."""
    proc = run_cli([*verb, "--data", str(one_class_folder), "--out", "runs", "--epochs", "1"], tmp_path)
    line = one_line_error(proc)
    assert "at least two classes" in line and "Cat" in line, line


def test_test_split_missing_a_class_warns(fashion):
    from convlens.data import DatasetSplits
    from convlens.engine import prepare_data
    from convlens.models import create_model

    test = fashion.test.subset(torch.nonzero(fashion.test.labels != 9).view(-1)[:300])
    data = DatasetSplits(fashion.train.subset(torch.arange(300)), test, "fashion-mnist")
    with pytest.warns(DataWarning, match=r"no images of 1 of 10 classes \(Ankle boot\)"):
        prepare_data({"data": "fashion-mnist", "seed": 0, "val_size": 0}, create_model("dnn"), data=data)


# ---- threads ------------------------------------------------------------------------------
def test_convlens_threads_reaches_train(tmp_path, monkeypatch):
    from convlens.engine import train

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setenv("CONVLENS_THREADS", "1")
    try:
        train(_tiny_cfg(tmp_path, threads=None))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


# ---- checkpoints that cannot name their outputs --------------------------------------------
@pytest.fixture
def good_checkpoint(tmp_path):
    from convlens.engine import model_meta, save_model_checkpoint
    from convlens.models import create_model

    torch.manual_seed(0)
    model = create_model("dnn")
    classes = [f"c{i}" for i in range(10)]
    path = tmp_path / "good.ckpt"
    save_model_checkpoint(path, model, model_meta(model, "dnn", classes))
    return path


@pytest.mark.parametrize("damage,expect", [
    (lambda m: {k: v for k, v in m.items() if k != "model_name"}, "lacks model_name"),
    (lambda m: "dnn", "is a str, not a mapping"),
    (lambda m: {**m, "classes": m["classes"][:3]}, "names 3 classes for num_classes=10"),
])
def test_predict_on_damaged_metadata_is_one_line(damage, expect, good_checkpoint, shared_data, tmp_path, capsys):
    from convlens.cli import main

    ckpt = torch.load(good_checkpoint, weights_only=True)
    ckpt["convlens"] = damage(ckpt["convlens"])
    bad = tmp_path / "bad.ckpt"
    torch.save(ckpt, bad)
    assert main(["predict", str(bad), str(shared_data / "images" / "cat.jpg")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expect in err, err


def test_predict_refuses_nan_weights(good_checkpoint, shared_data, tmp_path, capsys):
    from convlens.cli import main

    ckpt = torch.load(good_checkpoint, weights_only=True)
    first = next(iter(ckpt["state_dict"]))
    ckpt["state_dict"][first] = torch.full_like(ckpt["state_dict"][first], float("nan"))
    torch.save(ckpt, tmp_path / "nan.ckpt")
    assert main(["predict", str(tmp_path / "nan.ckpt"), str(shared_data / "images" / "cat.jpg")]) == 2
    assert "inf/NaN" in capsys.readouterr().err  # before: "nan%"


def test_predict_with_a_missing_image_exits_2(good_checkpoint, shared_data, tmp_path, capsys):
    from convlens.cli import main

    rc = main(["predict", str(good_checkpoint), str(shared_data / "images" / "cat.jpg"), str(tmp_path / "missing.jpg")])
    out = capsys.readouterr().out
    assert rc == 2 and "missing.jpg: cannot predict (no such file)" in out and "cat.jpg: c" in out
