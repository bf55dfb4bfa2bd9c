"""The training engine on real Fashion-MNIST subsets: accuracy, files, resume, errors."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from convlens.engine import TrainConfig, evaluate_run, load_run_model, train
from convlens.errors import CheckpointError, ConvlensError

REPO = Path(__file__).resolve().parents[2]


def _cfg(tmp_path, **kw):
    base = dict(model="cnn", epochs=2, limit_train=2500, limit_test=1000, val_size=500, out=str(tmp_path), progress=False, threads=2)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    return train(_cfg(tmp_path_factory.mktemp("runs"), name="cnn"))


def test_short_training_beats_chance_by_far(cnn_run):
    # 10 classes: chance is 10%; 2 epochs on 2,000 real images already reach ~75-80%
    assert cnn_run.test_acc > 0.70
    assert [r["epoch"] for r in cnn_run.history] == [1, 2]
    assert cnn_run.history[-1]["train_loss"] < cnn_run.history[0]["train_loss"]


def test_run_folder_has_every_promised_file(cnn_run):
    p = cnn_run.run.path
    for f in ["config.json", "metrics.jsonl", "summary.json", "report.html", "checkpoints/epoch=001.ckpt",
              "checkpoints/epoch=002.ckpt", "checkpoints/last.ckpt", "checkpoints/best.ckpt", "plots/curves.png",
              "plots/confusion_matrix.png", "plots/per_class_accuracy.png", "plots/predictions.png"]:
        assert (p / f).is_file() and (p / f).stat().st_size > 0, f
    rec = json.loads((p / "config.json").read_text())
    assert rec["config"]["seed"] == 0 and rec["config"]["model"] == "cnn"
    assert torch.__version__.startswith(rec["versions"]["torch"]) and "lightning" in rec["versions"]
    rows = [json.loads(l) for l in (p / "metrics.jsonl").read_text().splitlines()]
    assert {"train_loss", "train_acc", "val_acc", "test_acc", "seconds", "images_per_s"} <= set(rows[0])
    summary = json.loads((p / "summary.json").read_text())
    assert summary["train_images"] == 2000 and summary["val_images"] == 500 and summary["test_images"] == 1000


def test_report_is_self_contained(cnn_run):
    html = (cnn_run.run.path / "report.html").read_text()
    srcs = re.findall(r"""src=['"]([^'"]+)""", html)
    assert len(srcs) >= 4 and all(s.startswith("data:image/png;base64,") for s in srcs)
    for href in re.findall(r"""href=['"]([^'"]+)""", html):
        assert (cnn_run.run.path / href).exists(), href


def test_checkpoints_rebuild_the_model_and_evaluate_run_agrees(cnn_run):
    model, meta = load_run_model(cnn_run.run.path, "last")
    assert meta["classes"][0] == "T-shirt/top" and meta["pretrained_cfg"]["mean"] == (0.2860,)
    trained = {k: v for k, v in cnn_run.model.state_dict().items()}
    assert all(torch.equal(trained[k], v) for k, v in model.state_dict().items())
    res = evaluate_run(cnn_run.run.path, progress=False)
    by_epoch = {r["epoch"]: r for r in cnn_run.history}
    for row in res["epochs"]:  # the clean re-evaluation equals what training logged
        assert row["test_acc"] == pytest.approx(by_epoch[row["epoch"]]["test_acc"], abs=1e-9)
        assert row["val_acc"] == pytest.approx(by_epoch[row["epoch"]]["val_acc"], abs=1e-9)
    assert res["best_by"] == "val_acc"
    assert res["best_epoch"] == max(cnn_run.history, key=lambda r: (r["val_acc"], -r["epoch"]))["epoch"]
    assert json.loads((cnn_run.run.path / "evaluation.json").read_text())["best_epoch"] == res["best_epoch"]


def test_checkpoint_of_another_architecture_is_a_clear_error(cnn_run, tmp_path):
    ck = torch.load(cnn_run.run.path / "checkpoints" / "last.ckpt", weights_only=True)
    ck["convlens"]["model_name"] = "dnn"
    torch.save(ck, tmp_path / "wrong.ckpt")
    with pytest.raises(CheckpointError, match="another architecture") as info:
        load_run_model(tmp_path / "wrong.ckpt")
    assert "\n" not in str(info.value)


def test_truncated_checkpoint_is_a_clear_error(cnn_run, tmp_path):
    data = (cnn_run.run.path / "checkpoints" / "last.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.ckpt"):
        load_run_model(tmp_path / "cut.ckpt")


def test_existing_run_folder_is_not_overwritten(cnn_run):
    with pytest.raises(ConvlensError, match="--resume"):
        train(_cfg(cnn_run.run.path.parent, name="cnn"))


def test_bad_arguments_are_one_line_errors():
    for kw, flag in [({"epochs": 0}, "--epochs"), ({"optimizer": "adagrad"}, "--optimizer"), ({"lr": -1}, "--lr")]:
        with pytest.raises(ConvlensError, match=flag):
            TrainConfig(**kw)


def _restore_sigint() -> None:
    # a shell starts background jobs with SIGINT ignored, and Python then never raises KeyboardInterrupt:
    # give the child the default handler, as a terminal's Ctrl-C would find it
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cli(args, **kw):
    env = {**os.environ, "CONVLENS_THREADS": "2"}
    return subprocess.Popen([sys.executable, "-m", "convlens", *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_restore_sigint, **kw)


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    """Ctrl-C during epoch 2, --resume: the final weights equal an uninterrupted run's."""
    args = ["train", "--model", "cnn", "--epochs", "3", "--limit-train", "1600", "--limit-test", "200", "--val-size", "200",
            "--out", str(tmp_path), "--no-progress", "--seed", "3"]
    proc = _cli(args + ["--name", "cut"])
    first = tmp_path / "cut" / "checkpoints" / "epoch=001.ckpt"
    deadline = time.time() + 240
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert first.exists(), proc.communicate()[1][-2000:]
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "--resume" in err and not (tmp_path / "cut" / "checkpoints" / "epoch=003.ckpt").exists()

    resumed = _cli(["train", "--resume", str(tmp_path / "cut"), "--no-progress"])
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-2000:]
    assert out.strip().splitlines()[-1].startswith("test accuracy ")

    whole = _cli(args + ["--name", "whole"])
    out, err = whole.communicate(timeout=300)
    assert whole.returncode == 0, err[-2000:]
    a = torch.load(tmp_path / "cut" / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(tmp_path / "whole" / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 2
    for k in b["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    rows = [json.loads(l) for l in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    proc = _cli(["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path)])
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert err.strip().startswith("convlens: error:") and "Traceback" not in err and len(err.strip().splitlines()) == 1
    proc = _cli(["evaluate", str(tmp_path)])
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "not a convlens run folder" in err and "Traceback" not in err


def test_ddp_on_two_cpu_processes(tmp_path):
    """--devices 2: DistributedDataParallel (gloo on CPU), each process a shard of every epoch."""
    proc = _cli(["train", "--model", "dnn", "--device", "cpu", "--devices", "2", "--threads", "1", "--epochs", "1",
                 "--limit-train", "1200", "--limit-test", "300", "--val-size", "200", "--batch-size", "50",
                 "--out", str(tmp_path), "--name", "ddp", "--no-progress"])
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    rows = [json.loads(l) for l in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1
    assert rows[0]["train_n"] == 1000 and rows[0]["val_n"] == 200  # sums over both processes
    assert rows[0]["train_acc"] > 0.3 and (tmp_path / "ddp" / "checkpoints" / "epoch=001.ckpt").is_file()
    assert out.strip().splitlines()[-1].startswith("test accuracy ")


def test_final_test_accuracy_is_that_of_the_saved_weights(cnn_run):
    """The summary's test accuracy (reused from the last epoch's evaluation) equals a fresh
    evaluation of the saved last checkpoint under the run's precision."""
    from convlens.engine.evaluate import evaluate_model
    from convlens.engine.training import prepare_data

    s = cnn_run.run.summary()
    model, meta = load_run_model(cnn_run.run.path, which="last")
    splits = prepare_data(cnn_run.run.config, model, meta=meta)
    ev = evaluate_model(model, splits["test"], precision=s["precision"], pretrained_cfg=meta["pretrained_cfg"])
    assert ev.acc == pytest.approx(s["test_acc"], abs=1e-9) == pytest.approx(cnn_run.history[-1]["test_acc"], abs=1e-9)
    assert ev.loss == pytest.approx(s["test_loss"], rel=1e-4)  # a sum of bf16-computed batch means


def test_resume_with_more_epochs_extends_a_finished_run(tmp_path):
    short = train(_cfg(tmp_path, model="dnn", epochs=1, limit_train=1200, limit_test=300, val_size=200, name="ext"))
    assert [r["epoch"] for r in short.history] == [1]
    longer = train(_cfg(tmp_path, model="dnn"), resume=short.run.path, epochs=3)
    assert [r["epoch"] for r in longer.history] == [1, 2, 3]
    assert (short.run.path / "checkpoints" / "epoch=003.ckpt").is_file()
    with pytest.raises(ConvlensError, match="already trained 3 epochs"):
        train(_cfg(tmp_path, model="dnn"), resume=short.run.path, epochs=2)


def test_precision_flag_is_checked_and_recorded(tmp_path):
    with pytest.raises(ConvlensError, match="--precision"):
        TrainConfig(precision="fp8")
    res = train(_cfg(tmp_path, model="dnn", epochs=1, limit_train=600, limit_test=200, val_size=100, name="p32",
                     precision="32-true"), report=False)
    assert res.run.summary()["precision"] == "32-true"


@pytest.mark.parametrize("limit_train", [1250, 1201])  # a short last batch kept; a last batch of 1 dropped
def test_grouped_steps_train_exactly_like_one_step_per_batch(tmp_path, monkeypatch, limit_train):
    """Small images reach Lightning in groups of ~1,000 (one optimizer step per batch_size of
    them): the same batches, order, steps and schedule as one step per loader batch."""
    import convlens.engine.training as training

    kw = dict(model="dnn", epochs=2, limit_train=limit_train, limit_test=200, val_size=0, scheduler="onecycle", lr=3e-3)
    grouped = train(_cfg(tmp_path, name=f"grouped{limit_train}", **kw), report=False)
    assert training.steps_per_loader_batch(100, (limit_train, 1, 28, 28)) == 10
    monkeypatch.setattr(training, "steps_per_loader_batch", lambda batch_size, shape: 1)
    single = train(_cfg(tmp_path, name=f"single{limit_train}", **kw), report=False)
    a, b = grouped.model.state_dict(), single.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["train_n"] for r in grouped.history] == [r["train_n"] for r in single.history] == [limit_train // 100 * 100 + (
        limit_train % 100 if limit_train % 100 != 1 else 0)] * 2
    assert training.steps_per_loader_batch(32, (10, 3, 224, 224)) == 1  # large images: one step per batch


def test_model_kwargs_from_the_command_line(tmp_path, capsys):
    from convlens.cli import main
    from convlens.engine.cli import parse_model_kwargs

    assert parse_model_kwargs(["width=48", "flip_tta=true", "drop=0.1", "act=relu", "x=none"]) == \
        {"width": 48, "flip_tta": True, "drop": 0.1, "act": "relu", "x": None}
    common = ["train", "--model", "fashion_vgg", "--epochs", "1", "--limit-train", "300", "--limit-test", "100", "--val-size", "0",
              "--out", str(tmp_path), "--no-progress"]
    assert main(common + ["--name", "vgg8", "--model-kwargs", "width=8", "flip_tta=true"]) == 0
    config = json.loads((tmp_path / "vgg8" / "config.json").read_text())["config"]
    assert config["model_kwargs"] == {"width": 8, "flip_tta": True}
    model, _ = load_run_model(tmp_path / "vgg8")
    assert model.flip_tta and model.features[0][0].out_channels == 8
    capsys.readouterr()
    assert main(common + ["--name", "bad", "--model-kwargs", "widht=8"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "widht" in err and "--model-kwargs" in err
    assert main(common + ["--name", "bad2", "--model-kwargs", "width"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_progress_bar_counts_optimizer_steps_with_loss_and_throughput(tmp_path, capsys):
    train(_cfg(tmp_path, model="dnn", epochs=1, limit_train=1200, limit_test=200, val_size=200, name="bar", progress=True),
          report=False)
    out = capsys.readouterr()
    text = out.out + out.err
    # 1,000 training images in batches of 100: 10 steps (one Lightning batch carries all 10)
    assert "Epoch 1/1" in text and "10/10" in text and "loss=" in text and "img_s=" in text


def test_testing_only_after_the_last_epoch_gives_the_same_final_accuracy(tmp_path):
    kw = dict(model="dnn", epochs=2, limit_train=1200, limit_test=300, val_size=200)
    every = train(_cfg(tmp_path, name="every", **kw), report=False)
    once = train(_cfg(tmp_path, name="once", test_every_epoch=False, **kw), report=False)
    assert "test_acc" in every.history[0] and "test_acc" not in once.history[0]
    assert once.history[0]["val_acc"] == every.history[0]["val_acc"]  # the validation split is still scored
    assert once.history[-1]["test_acc"] == every.history[-1]["test_acc"] == once.test_acc == every.test_acc


def test_no_test_every_epoch_flag(tmp_path, capsys):
    from convlens.cli import main

    main(["train", "--model", "dnn", "--epochs", "2", "--limit-train", "600", "--limit-test", "200", "--val-size", "0",
          "--no-test-every-epoch", "--no-progress", "--out", str(tmp_path), "--name", "flag"])
    rows = [json.loads(line) for line in (tmp_path / "flag" / "metrics.jsonl").read_text().splitlines()]
    assert ["test_acc" in r for r in rows] == [False, True]
    assert json.loads((tmp_path / "flag" / "config.json").read_text())["config"]["test_every_epoch"] is False


def test_cpu_training_flushes_subnormals_while_it_runs_unless_told_not_to(tmp_path):
    from convlens._runtime import denormals_flushed

    seen = []

    def listener(event):
        if event.kind == "epoch_start":
            seen.append(denormals_flushed())

    for name, flush in (("flush", True), ("keep", False)):
        train(_cfg(tmp_path, epochs=1, limit_train=300, limit_test=100, val_size=0, name=name, flush_denormals=flush),
              listeners=[listener], report=False)
    assert seen == [True, False]
    assert not denormals_flushed()  # the process is left as it was found
