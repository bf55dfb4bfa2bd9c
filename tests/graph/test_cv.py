import numpy as np
import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool

from convlens.graph.cv import PackedGraphs, cross_validate, stratified_folds
from convlens.graph.models import GIN, GraphGCN


def test_packed_batch_equals_pyg_batch(mutag):
    ids = [5, 0, 187, 42]
    ref = Batch.from_data_list([mutag[i] for i in ids])
    x, ei, batch, ea, y = PackedGraphs(mutag).batch(ids)
    assert torch.equal(x, ref.x) and torch.equal(ei, ref.edge_index) and torch.equal(batch, ref.batch)
    assert torch.equal(ea, ref.edge_attr) and torch.equal(y, ref.y)


def test_degree_features(mutag):
    x = PackedGraphs(mutag, degree_features=4).x
    assert x.shape == (sum(g.num_nodes for g in mutag), 7 + 5)
    deg = torch.bincount(mutag[0].edge_index[1], minlength=mutag[0].num_nodes)
    assert torch.equal(x[: mutag[0].num_nodes, 7:].argmax(1), deg.clamp(max=4))


def test_folds_are_stratified_partitions(mutag):
    y = np.array([int(g.y) for g in mutag])
    folds = stratified_folds(y, 10, seed=0)
    test_ids = np.concatenate([te for _, te in folds])
    assert sorted(test_ids.tolist()) == list(range(188))
    for tr, te in folds:
        assert not set(tr) & set(te)
        assert abs(y[te].mean() - y.mean()) < 0.06  # each fold has the data set's 2:1 class ratio


@pytest.mark.parametrize("readout,ref", [("mean", global_mean_pool), ("sum", global_add_pool), ("max", global_max_pool)])
def test_readout_by_hand(readout, ref):
    # two graphs: nodes 0-2 (graph 0) and 3-4 (graph 1)
    x = torch.tensor([[1.0, 0.0], [3.0, 2.0], [2.0, -4.0], [0.0, 1.0], [5.0, 1.0]])
    batch = torch.tensor([0, 0, 0, 1, 1])
    by_hand = {"mean": [[2.0, -2 / 3], [2.5, 1.0]], "sum": [[6.0, -2.0], [5.0, 2.0]], "max": [[3.0, 2.0], [5.0, 1.0]]}
    assert torch.allclose(ref(x, batch), torch.tensor(by_hand[readout]))
    m = GraphGCN(2, 4, 2, num_layers=1, readout=readout, jk=False)
    assert m.pool is ref


def test_graph_models_batch_independent(mutag):
    """A graph's logits do not depend on which other graphs share its batch (eval mode)."""
    packed = PackedGraphs(mutag)
    torch.manual_seed(0)
    for model in (GraphGCN(7, 16, 2, edge_dim=4), GIN(7, 16, 2, edge_dim=4)):
        model.eval()
        x, ei, b, ea, _ = packed.batch([3, 10, 20])
        full = model(x, ei, b, ea)
        x, ei, b, ea, _ = packed.batch([10])
        assert torch.allclose(model(x, ei, b, ea)[0], full[1], atol=1e-5)


def test_mutag_gcn_mean_cv(mutag):
    """GCN + mean readout, 10-fold CV, 60 epochs (the benchmark runs 100)."""
    from convlens.graph.pipeline import GRAPH_DEFAULTS

    kw = {**GRAPH_DEFAULTS["gcn"], "epochs": 60}
    r = cross_validate(mutag, model="gcn", readout="mean", folds=10, seed=0, progress=False, **kw)
    assert len(r.fold_acc) == 10 and r.curves.shape == (10, 60)
    assert r.mean >= 0.80, r.summary()
    assert r.best_epoch_mean >= r.mean - 1e-9  # the optimistic protocol can only be higher
