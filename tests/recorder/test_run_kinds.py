"""Every run kind goes through the one recorder: events a notebook can listen to, and a best
checkpoint that reloads by the model name the run recorded."""
from __future__ import annotations

import torch

from convlens.engine import load_run_model
from convlens.events import collect, read_events


def test_graph_run_reloads_by_its_recorded_name_and_emits_events(tmp_path):
    from convlens.graph import train
    from convlens.graph.datasets import load_node_data
    from convlens.graph.fitting import prepare_features

    seen: list = []
    res = train(data="karate", out=tmp_path / "k", seed=1, progress=False, listeners=[collect(seen)])
    assert res["test_acc"] >= 0.9 and res.summary["best_by"] == "last"  # karate has no validation nodes
    kinds = [e.kind for e in seen]
    assert kinds[0] == "run_start" and kinds.count("epoch_end") == 200 and kinds[-1] == "run_end"
    assert [e.kind for e in read_events(res.run.path)[0]] == kinds  # the same stream in events.jsonl
    model, meta = load_run_model(res.run.path)  # "graph/gcn" is built by create_model
    assert meta["model_name"] == "graph/gcn" and meta["epoch"] == res.best_epoch == 200
    trained = res.model.state_dict()
    assert all(torch.equal(trained[k], v) for k, v in model.state_dict().items())
    g = load_node_data("karate")
    with torch.no_grad():
        pred = model(prepare_features(g.x), g.edge_index).argmax(1)
    acc = float((pred[g.test_mask] == g.y[g.test_mask]).float().mean())
    assert acc == res["test_acc"]


def test_one_class_is_refused_in_one_line_by_train_and_transfer(shared_data, tmp_path):
    import shutil

    import pytest

    from convlens.engine import TrainConfig, train
    from convlens.errors import ConvlensError
    from convlens.transfer import TransferConfig, transfer

    cats = tmp_path / "cats" / "Cat"
    cats.mkdir(parents=True)
    for p in sorted((shared_data / "catanddog" / "train" / "Cat").glob("*.jpg"))[:6]:
        shutil.copyfile(p, cats / p.name)
    with pytest.raises(ConvlensError, match=r"at least two classes, found only \['Cat'\]"):
        train(TrainConfig(data=str(tmp_path / "cats"), model="cnn", epochs=1, val_size=0, out=str(tmp_path / "r"), progress=False))
    with pytest.raises(ConvlensError, match=r"at least two classes, found only \['Cat'\]"):
        transfer(TransferConfig(data=str(tmp_path / "cats"), out=str(tmp_path / "r"), progress=False), log=lambda m: None)
    assert not list((tmp_path / "r").glob("*/checkpoints/*.ckpt"))


def test_evaluate_and_predict_never_import_lightning(tmp_path, shared_data):
    """Reopening a run (evaluate, predict) pays for torch only: Lightning costs seconds to import."""
    import subprocess
    import sys

    code = f"""
import sys
from convlens.data import load_dataset
from convlens.engine import evaluate_run, model_meta, predict, save_model_checkpoint
from convlens.models import create_model
from convlens.runs import RunDir
run = RunDir.create({str(tmp_path / 'r')!r}, {{"data": "fashion-mnist", "seed": 0, "limit_train": 300, "limit_test": 200,
                                            "val_size": 100}}, kind="train")
m = create_model("dnn")
save_model_checkpoint(run.checkpoints_dir / "epoch=001.ckpt", m, model_meta(m, "dnn", load_dataset("fashion-mnist").classes), epoch=0)
res = evaluate_run(run.path, progress=False)
assert [r["epoch"] for r in res["epochs"]] == [1] and 0 <= res["test_acc"] <= 1
assert predict(run.checkpoints_dir / "epoch=001.ckpt", [{str(shared_data / 'images' / 'cat.jpg')!r}])[0].error is None
print("lightning" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_engine_run_events_file_modes_and_threads_from_the_environment(tmp_path, monkeypatch):
    import stat

    from convlens.engine import TrainConfig, train

    before = torch.get_num_threads()
    monkeypatch.setenv("CONVLENS_THREADS", "1")
    seen: list = []
    try:
        res = train(TrainConfig(model="dnn", epochs=2, limit_train=600, limit_test=200, val_size=100, out=str(tmp_path),
                                name="t", progress=False), listeners=[collect(seen)])
        assert torch.get_num_threads() == 1  # CONVLENS_THREADS is honoured when --threads is not given
    finally:
        torch.set_num_threads(before)
    kinds = [e.kind for e in seen]
    assert kinds[:2] == ["run_start", "epoch_start"] and kinds.count("epoch_end") == 2 and kinds[-1] == "run_end"
    assert "step" in kinds and all(e.run == "t" for e in seen)
    ends = [e for e in seen if e.kind == "epoch_end"]
    assert [e.metrics["val_acc"] for e in ends] == [r["val_acc"] for r in res.history]
    ck = res.run.checkpoints_dir
    modes = {stat.S_IMODE((ck / n).stat().st_mode) for n in ("epoch=001.ckpt", "epoch=002.ckpt", "last.ckpt", "best.ckpt")}
    assert len(modes) == 1
    assert res.summary["best_by"] == "val_acc" and torch.load(ck / "best.ckpt", weights_only=True)["epoch"] + 1 == res.best_epoch
    assert (res.run.path / "report.html").stat().st_mtime >= (res.run.path / "summary.json").stat().st_mtime
