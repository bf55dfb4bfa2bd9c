import os
import warnings

import pytest
import torch

from convlens.errors import DataError
from convlens.graph.datasets import load_csv_graph, load_karate, load_mutag, load_planetoid


def _snapshot(folder):
    return sorted((p, os.stat(os.path.join(folder, p)).st_mtime_ns) for p in os.listdir(folder))


def test_planetoid_public_split_and_source_untouched(shared_data, tmp_path):
    raw = shared_data / "planetoid" / "raw"
    before = _snapshot(raw)
    d = load_planetoid("citeseer", raw, tmp_path)
    assert (d.num_nodes, d.num_features) == (3327, 3703)
    assert (int(d.train_mask.sum()), int(d.val_mask.sum()), int(d.test_mask.sum())) == (120, 500, 1000)
    assert torch.bincount(d.y[d.train_mask]).tolist() == [20] * 6
    assert _snapshot(raw) == before
    assert len(list((tmp_path / "planetoid").glob("*/CiteSeer/processed/data.pt"))) == 1  # keyed on the raw files
    # class names follow the class sizes of the original Citeseer (DB is the largest: 701)
    assert d.class_names[int(torch.bincount(d.y).argmax())] == "DB"


def test_cora(cora):
    assert (cora.num_nodes, cora.num_features, cora.edge_index.size(1)) == (2708, 1433, 10556)
    assert cora.class_names[int(torch.bincount(cora.y).argmax())] == "Neural_Networks"


def test_mutag(mutag, shared_data):
    assert len(mutag) == 188 and mutag.num_features == 7 and mutag.num_edge_features == 4
    assert torch.bincount(mutag.y).tolist() == [63, 125]
    # every bond is exactly one of the 4 types
    assert torch.all(mutag[0].edge_attr.sum(1) == 1)


def test_missing_data_dir_is_a_one_line_error(tmp_path):
    with pytest.raises(DataError, match=r"--data-dir .*ind\.cora\.x"):
        load_planetoid("cora", tmp_path, tmp_path / "cache")
    with pytest.raises(DataError, match=r"MUTAG_A\.txt"):
        load_mutag(tmp_path, tmp_path / "cache")


def test_karate_one_label_per_class():
    g = load_karate()
    assert g.train_mask.nonzero().view(-1).tolist() == [0, 33]
    assert g.y[0].item() != g.y[33].item()
    assert int(g.test_mask.sum()) == 32 and not g.val_mask.any()


def _write(tmp_path, nodes, edges):
    n, e = tmp_path / "nodes.csv", tmp_path / "edges.csv"
    n.write_text(nodes)
    e.write_text(edges)
    return n, e


def test_csv_graph(tmp_path):
    nodes = "id,f1,f2,label\n" + "".join(f"n{i},{i},{i % 3},{'a' if i < 5 else 'b'}\n" for i in range(10))
    edges = "src,dst,type\nn0,n1,x\nn1,n0,x\nn1,n2,y\nn3,n3,x\nn5,n6,y\n"
    n, e = _write(tmp_path, nodes, edges)
    with pytest.warns(UserWarning, match=r"dropped 1 self loop.*line\(s\) 5"):
        g = load_csv_graph(n, e)
    assert g.num_nodes == 10 and g.x.shape == (10, 2)
    assert g.edge_index.size(1) == 6  # n0-n1 merged, n3-n3 dropped, both directions stored
    assert g.edge_attr.shape == (6, 2) and g.edge_type_names == ["x", "y"]
    assert g.class_names == ["a", "b"] and g.y.tolist() == [0] * 5 + [1] * 5
    assert (g.train_mask.int() + g.val_mask.int() + g.test_mask.int()).tolist() == [1] * 10


@pytest.mark.parametrize("nodes,edges,msg", [
    ("id,f,label\na,1,x\nb,2,y\n", "src,dst\na,zz\n", r"edges\.csv: line 2: unknown node id 'zz'"),
    ("id,f,label\na,1,x\na,2,y\n", "src,dst\na,a\n", r"nodes\.csv: line 3: duplicate node id 'a'"),
    ("id,f,label\na,1,x\nb,2,\n", "src,dst\na,b\n", r"nodes\.csv: line 3: node 'b' has no label"),
    ("id,f,label\na,1,x\nb,oops,y\n", "src,dst\na,b\n", r"line 3: node 'b' has a non-numeric feature"),
    ("name,f,label\na,1,x\n", "src,dst\n", r"line 1 must start with an 'id' column"),
])
def test_csv_errors_name_the_line(tmp_path, nodes, edges, msg):
    n, e = _write(tmp_path, nodes, edges)
    with pytest.raises(DataError, match=msg) as exc:
        load_csv_graph(n, e)
    assert "\n" not in str(exc.value)


def test_csv_self_loop_error_mode(tmp_path):
    n, e = _write(tmp_path, "id,label\na,x\nb,y\n", "src,dst\na,b\nb,b\n")
    with pytest.raises(DataError, match=r"line 3: self loop on node 'b'"):
        load_csv_graph(n, e, self_loops="error")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = load_csv_graph(n, e)
    assert torch.equal(g.x, torch.eye(2))  # no feature columns: identity features
