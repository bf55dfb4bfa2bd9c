"""End to end on real photos: the run folder, frozen weights, the cache, predict, evaluate, CLI."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from convlens.transfer import TransferConfig, predict, transfer


@pytest.fixture(scope="module")
def fe_run(small_catdog: Path, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("fe")
    cfg = TransferConfig(data=str(small_catdog), epochs=3, batch_size=4, out=str(work / "runs"), name="fe", cache_dir=str(work / "cache"),
                         progress=False, val_fraction=0.2)
    return transfer(cfg, log=lambda m: None), cfg, work


def test_run_folder_like_train(fe_run) -> None:
    res, cfg, _ = fe_run
    run = res.run.path
    for f in ("config.json", "metrics.jsonl", "summary.json", "report.html", "plots/curves.png", "plots/confusion_matrix.png",
              "plots/predictions.png", "checkpoints/best.ckpt", "checkpoints/last.ckpt"):
        assert (run / f).is_file(), f
    assert sorted(p.name for p in (run / "checkpoints").glob("epoch=*.ckpt")) == ["epoch=001.ckpt", "epoch=002.ckpt", "epoch=003.ckpt"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3] and all(r["test_acc"] is not None and r["val_acc"] is not None for r in rows)
    s = res.summary
    assert (s["train_images"], s["val_images"], s["test_images"]) == (14, 3, 8)  # 17 train: 20% held out for validation
    assert s["best_by"] == "val_loss" and s["features_computed"] == 25
    assert res.history[-1]["test_acc"] >= 0.75  # 8 real test photos, head on 14 images (3 epochs of 4 steps)
    best = min(res.history, key=lambda r: r["val_loss"])["epoch"]  # chosen on validation (3 images here), never on test
    assert res.best_epoch == best and res.test_acc == next(r["test_acc"] for r in res.history if r["epoch"] == best)


def test_feature_extraction_leaves_the_backbone_untouched(fe_run, lite0) -> None:
    from convlens.engine.checkpoint import read_checkpoint

    res, _, _ = fe_run
    ck = res.run.path / "checkpoints"
    sd = {k[len("model."):]: v for k, v in read_checkpoint(ck / "best.ckpt")["state_dict"].items()}
    ref = lite0.model.state_dict()
    assert sd.keys() == ref.keys()
    body = [k for k in ref if not k.startswith("classifier.")]
    assert all(torch.equal(sd[k], ref[k]) for k in body)  # weights and BatchNorm statistics
    assert not torch.equal(sd["classifier.weight"], ref["classifier.weight"])
    # the frozen network is stored once; each epoch keeps only its head
    head_only = torch.load(ck / "epoch=002.ckpt", weights_only=True)
    assert sorted(head_only["state_dict"]) == ["model.classifier.bias", "model.classifier.weight"]
    assert head_only["base"] == "backbone.ckpt" and (ck / "epoch=002.ckpt").stat().st_size < 50_000


def test_a_head_without_its_backbone_is_a_clear_error(fe_run, tmp_path: Path) -> None:
    import shutil

    from convlens.engine import load_run_model
    from convlens.errors import CheckpointError

    res, _, _ = fe_run
    copy = tmp_path / "moved"
    shutil.copytree(res.run.path, copy)
    (copy / "checkpoints" / "backbone.ckpt").unlink()
    with pytest.raises(CheckpointError, match="frozen backbone .* is missing"):
        load_run_model(copy, which=2)


def test_second_run_hits_the_cache(fe_run) -> None:
    res, cfg, work = fe_run
    again = transfer(TransferConfig(**{**cfg.to_dict(), "name": "fe2"}), log=lambda m: None)
    assert again.summary["features_computed"] == 0 and again.summary["features_cached"] == 25
    assert again.test_acc == res.test_acc  # same seed, same features: same result
    # all features cached: the backbone came as a card, the network was never built
    assert res.summary["network_built"] and not again.summary["network_built"]
    assert again.summary["params"] == res.summary["params"] == sum(p.numel() for p in res.model.parameters())
    a, b = res.model.state_dict(), again.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_backbone_card_follows_the_weights_file(lite0, tmp_path: Path) -> None:
    from convlens.transfer.backbones import load_backbone

    weights = tmp_path / "w.pth"
    sd = {k: v for k, v in lite0.model.state_dict().items() if not k.startswith("classifier.")}
    torch.save(sd, weights)
    first = load_backbone("efficientnet_lite0", num_classes=2, weights=weights, cache_dir=tmp_path / "cache")
    second = load_backbone("efficientnet_lite0", num_classes=2, weights=weights, cache_dir=tmp_path / "cache")
    assert first.built and not second.built and second.key() == first.key()
    assert second.stages == first.stages and second.head_keys == first.head_keys == ["classifier.weight", "classifier.bias"]
    assert second.body_params == first.body_params and second.feature_dim == 1280
    lazy = second.model  # touching it builds the same network
    assert second.built and all(torch.equal(lazy.state_dict()[k], v) for k, v in sd.items())
    sd["conv_stem.weight"] = sd["conv_stem.weight"] * 2  # other weights under the same name
    torch.save(sd, weights)
    third = load_backbone("efficientnet_lite0", num_classes=2, weights=weights, cache_dir=tmp_path / "cache")
    assert third.built and third.weights_id != first.weights_id


def test_predict_and_evaluate_agree_with_the_run(fe_run, shared_data: Path) -> None:
    from convlens.engine import evaluate_run

    res, cfg, _ = fe_run
    [p, missing] = predict(res.run.path, [shared_data / "images" / "cat.jpg", "nope.jpg"], device="cpu")
    assert p.top(1)[0][0] == "Cat" and abs(float(p.probs.sum()) - 1) < 1e-5
    assert missing.error == "no such file"
    ev = evaluate_run(res.run.path, device="cpu", progress=False)
    rows = {r["epoch"]: r for r in res.history}
    for r in ev["epochs"]:  # the engine rebuilds the same val and test splits from the run's config
        assert abs(r["test_acc"] - rows[r["epoch"]]["test_acc"]) < 1e-6
        assert abs(r["val_acc"] - rows[r["epoch"]]["val_acc"]) < 1e-6
    # one declared rule: evaluate names the epoch the run saved as best.ckpt (the head's lowest val loss)
    assert ev["best_by"] == res.summary["best_by"] == "val_loss" and ev["best_epoch"] == res.best_epoch
    best = torch.load(res.run.path / "checkpoints" / "best.ckpt", weights_only=True)
    assert best["epoch"] == res.best_epoch


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from convlens.transfer.cli import main

    assert main(["transfer", "--data", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing" in err
    assert main(["predict", str(tmp_path), "x.jpg"]) == 2
    assert "not a convlens run folder" in capsys.readouterr().err


def test_fine_tune_resumes_to_the_weights_of_an_uninterrupted_run(small_catdog: Path, tmp_path: Path) -> None:
    """A fine-tune run stopped after epoch 1 and resumed to 2 epochs (backbone rebuilt, stages
    refrozen, frozen BatchNorm back in eval mode) ends where a 2-epoch run ends."""
    kw = dict(data=str(small_catdog), strategy="fine-tune", unfreeze=1, image_size=64, batch_size=8, out=str(tmp_path),
              cache_dir=str(tmp_path / "cache"), progress=False, val_fraction=0.2)
    first = transfer(TransferConfig(**kw, epochs=1, name="cut"), log=lambda m: None)
    assert [r["epoch"] for r in first.history] == [1]
    # the report is written last, from the final summary: it shows what transfer adds to the engine's
    on_disk = json.loads((first.run.path / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(first.summary)) and on_disk["probe_val_acc"] is not None
    html = (first.run.path / "report.html").read_text()
    assert "probe_val_acc" in html and "frozen_bn" in html and "linear-probe val accuracy" in html
    resumed = transfer(TransferConfig(**kw, name="ignored"), resume=str(first.run.path), epochs=2, log=lambda m: None)
    assert [r["epoch"] for r in resumed.history] == [1, 2]
    assert resumed.summary["strategy"] == "fine-tune" and resumed.summary["epochs"] == 2
    assert resumed.summary["frozen_bn"] == first.summary["frozen_bn"] and "frozen_bn" in (resumed.run.path / "report.html").read_text()
    whole = transfer(TransferConfig(**kw, epochs=2, name="whole"), log=lambda m: None)
    a, b = resumed.model.state_dict(), whole.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in b)
    assert not (tmp_path / "ignored").exists()


def test_backbone_card_sees_a_file_replaced_with_its_size_and_mtime(lite0, tmp_path: Path) -> None:
    import os

    from convlens.transfer.backbones import load_backbone

    weights = tmp_path / "w.pth"
    sd = {k: v for k, v in lite0.model.state_dict().items() if not k.startswith("classifier.")}
    torch.save(sd, weights)
    st = weights.stat()
    first = load_backbone("efficientnet_lite0", num_classes=2, weights=weights, cache_dir=tmp_path / "cache")
    sd["bn2.running_mean"] = sd["bn2.running_mean"] + 1  # other numbers near the end of the file, same size
    torch.save(sd, weights)
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))  # `cp -p` of another file of the same size
    assert weights.stat().st_size == st.st_size
    again = load_backbone("efficientnet_lite0", num_classes=2, weights=weights, cache_dir=tmp_path / "cache")
    assert again.built and again.weights_id != first.weights_id


def test_a_held_out_test_split_does_not_count_skipped_files_twice(small_catdog: Path, tmp_path: Path) -> None:
    """One folder, no test/ inside: the test images are held out of it, and its skipped files were listed twice."""
    import shutil

    folder = tmp_path / "pets"
    shutil.copytree(small_catdog / "train", folder)
    for i in range(3):
        (folder / "Dog" / f"notes{i}.txt").write_text("not an image")
    logs: list[str] = []
    cfg = TransferConfig(data=str(folder), epochs=1, batch_size=4, out=str(tmp_path / "runs"), name="fe",
                         cache_dir=str(tmp_path / "cache"), progress=False)
    res = transfer(cfg, log=logs.append)
    assert sorted(Path(s.split(": ")[0]).name for s in res.summary["skipped_files"]) == ["notes0.txt", "notes1.txt", "notes2.txt"]
    assert f"skipped 3 file(s) in {folder}:" in logs
    assert not any(m.startswith("warning:") and "folder you meant" in m for m in logs)  # 3 of 19: no warning


def test_a_folder_of_mostly_non_images_is_questioned(small_catdog: Path, tmp_path: Path) -> None:
    """/tmp or a home folder given by mistake: its sub-folders became classes without a word."""
    import shutil

    folder = tmp_path / "home"
    shutil.copytree(small_catdog / "train", folder)
    for i in range(40):
        (folder / "Cat" / f"cache{i}.bin").write_bytes(bytes(range(64)))
    logs: list[str] = []
    cfg = TransferConfig(data=str(folder), epochs=1, batch_size=4, out=str(tmp_path / "runs"), name="fe",
                         cache_dir=str(tmp_path / "cache"), progress=False)
    transfer(cfg, log=logs.append)
    warning = [m for m in logs if m.startswith("warning:") and "folder you meant" in m]
    assert warning == [f"warning: {folder}: more files skipped (40) than images read (17); is it the folder you meant? "
                       "It should hold one sub-folder of images per class"]
