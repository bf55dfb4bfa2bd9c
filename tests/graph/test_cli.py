import argparse
import json

import pytest

from convlens.errors import ConvlensError
from convlens.graph.cli import register


def _run(argv):
    p = argparse.ArgumentParser(prog="convlens")
    register(p.add_subparsers(dest="command"))
    args = p.parse_args(argv)
    return args.func(args)


def test_show_karate_prints_and_draws(tmp_path, capsys):
    assert _run(["graph", "show", "karate", "--out", str(tmp_path / "k")]) == 0
    out = capsys.readouterr().out
    assert "Â = D^-1/2 (A+I) D^-1/2:" in out and "degrees:" in out
    deg_line = out.splitlines()[out.splitlines().index("degrees:") + 1].split()
    assert deg_line[0] == "16" and deg_line[-1] == "17"
    for f in ("matrices.png", "graph.png"):
        assert (tmp_path / "k" / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_show_mutag_molecule(tmp_path, capsys, shared_data, cache):
    assert _run(["graph", "show", "mutag", "--index", "3", "--no-plots", "--data-dir", str(shared_data / "tu" / "MUTAG" / "raw"),
                 "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "mutag[3] (mutagenic): N = 19 nodes" in out
    assert "X columns (one-hot atom type): C N O F I Cl Br" in out


def test_train_karate_run_folder(tmp_path, capsys):
    run = tmp_path / "run"
    assert _run(["graph", "train", "--data", "karate", "--out", str(run), "--seed", "1"]) == 0
    s = json.loads((run / "summary.json").read_text())
    assert s["test_acc"] >= 0.9 and s["num_train"] == 2 and s["num_test"] == 32
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 200 and rows[-1]["test_acc"] == s["final_test_acc"]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["kind"] == "graph" and cfg["config"]["seed"] == 1 and "torch_geometric" in cfg["versions"]
    for f in ("curves", "embedding", "confusion", "graph_predicted"):
        assert (run / "plots" / f"{f}.png").is_file()
    html = (run / "report.html").read_text()
    assert html.count("<img") == 4 and "GCN on karate" in html
    import torch

    ck = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
    assert ck["convlens"]["classes"] == ["Mr. Hi", "Officer"] and "model.convs.0.lin.weight" in ck["state_dict"]
    assert f"run folder: {run}" in capsys.readouterr().out


def test_train_user_csv(tmp_path):
    # a real graph written as the user's CSVs: karate with its club as label and no features
    from convlens.graph.datasets import load_karate

    g = load_karate()
    nodes = tmp_path / "club.csv"
    nodes.write_text("id,label\n" + "".join(f"m{i},{g.class_names[int(c)]}\n" for i, c in enumerate(g.y)))
    edges = tmp_path / "friends.csv"
    edges.write_text("src,dst\n" + "".join(f"m{a},m{b}\n" for a, b in g.edge_index.t().tolist() if a < b))
    run = tmp_path / "run"
    assert _run(["graph", "train", "--data", str(nodes), "--edges", str(edges), "--out", str(run), "--embedding", "pca"]) == 0
    s = json.loads((run / "summary.json").read_text())
    assert s["data"] == "club" and s["num_train"] + s["num_val"] + s["num_test"] == 34
    assert s["test_acc"] >= 0.8


def test_user_mistakes_are_convlens_errors(tmp_path, cache):
    with pytest.raises(ConvlensError, match="needs its edges CSV"):
        (tmp_path / "n.csv").write_text("id,label\na,x\n")
        _run(["graph", "train", "--data", str(tmp_path / "n.csv"), "--out", str(tmp_path / "r")])
    with pytest.raises(ConvlensError, match="unknown; use karate"):
        _run(["graph", "train", "--data", "imagenet", "--out", str(tmp_path / "r2")])
    with pytest.raises(ConvlensError, match="node classification uses gcn"):
        _run(["graph", "train", "--data", "karate", "--model", "gin", "--out", str(tmp_path / "r3")])
    with pytest.raises(ConvlensError, match="--index 500: MUTAG has molecules 0..187"):
        _run(["graph", "show", "mutag", "--index", "500", "--no-plots", "--cache-dir", str(cache)])
