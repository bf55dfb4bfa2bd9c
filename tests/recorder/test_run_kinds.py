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
    with pytest.raises(ConvlensError, match="only 1 class .*Cat.*at least two"):
        train(TrainConfig(data=str(tmp_path / "cats"), model="cnn", epochs=1, val_size=0, out=str(tmp_path / "r"), progress=False))
    with pytest.raises(ConvlensError, match="only 1 class .*Cat.*at least two"):
        transfer(TransferConfig(data=str(tmp_path / "cats"), out=str(tmp_path / "r"), progress=False), log=lambda m: None)
    assert not list((tmp_path / "r").glob("*/checkpoints/*.ckpt"))
