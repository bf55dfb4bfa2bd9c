import math

import pytest
import torch

from convlens.graph.datasets import load_karate
from convlens.graph.matrices import (adjacency, degrees, describe_matrices, feature_matrix, normalized_adjacency,
                                     normalized_adjacency_sparse, plot_graph, plot_matrices)


def test_path_matrices_by_hand(path4):
    A = adjacency(path4.edge_index, 4)
    assert torch.equal(A, torch.tensor([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]], dtype=torch.float))
    assert degrees(path4.edge_index, 4).tolist() == [1, 2, 2, 1]
    Ah = normalized_adjacency(path4.edge_index, 4)
    # d̃ = deg + 1 = [2, 3, 3, 2]; Â[0,1] = 1/sqrt(2*3), Â[1,1] = 1/3, Â[0,0] = 1/2
    assert Ah[0, 1].item() == pytest.approx(1 / math.sqrt(6))
    assert Ah[1, 1].item() == pytest.approx(1 / 3)
    assert Ah[0, 0].item() == pytest.approx(0.5)
    assert Ah[0, 2].item() == 0
    assert torch.allclose(Ah, Ah.t())


def test_isolated_node_and_identity_features(triangle_tail):
    Ah = normalized_adjacency(triangle_tail.edge_index, 5)
    assert Ah[4].tolist() == [0, 0, 0, 0, 1.0]  # only its self loop, weight 1/sqrt(1*1)
    X = feature_matrix(triangle_tail)
    assert torch.equal(X, torch.eye(5))
    # eigenvalues of Â lie in (-1, 1], the top one is exactly 1
    ev = torch.linalg.eigvalsh(Ah)
    assert ev.max().item() == pytest.approx(1.0, abs=1e-6) and ev.min().item() > -1


def test_sparse_equals_dense_and_gcn_norm_on_cora(cora):
    n = 300  # a real sub-graph: the first 300 papers and the citations among them
    from torch_geometric.utils import subgraph

    ei, _ = subgraph(torch.arange(n), cora.edge_index, relabel_nodes=True)
    dense = normalized_adjacency(ei, n)
    sparse = normalized_adjacency_sparse(ei, n).to_dense()
    assert torch.allclose(dense, sparse, atol=1e-7)
    assert torch.allclose(dense.sum(), sparse.sum())


def test_self_loops_in_input_are_replaced_not_doubled(path4):
    ei = torch.cat([path4.edge_index, torch.tensor([[1], [1]])], dim=1)
    assert torch.allclose(normalized_adjacency(ei, 4), normalized_adjacency(path4.edge_index, 4))


def test_karate_text_and_pictures():
    g = load_karate()
    assert g.num_nodes == 34 and g.edge_index.size(1) == 156
    text = describe_matrices(g)
    lines = text.splitlines()
    a_rows = lines[lines.index("A (adjacency):") + 1: lines.index("A (adjacency):") + 35]
    # node 0 (Mr. Hi) has 16 friends, node 33 (the officer) 17
    assert sum(int(v) for v in a_rows[0].split()[1:]) == 16
    assert sum(int(v) for v in a_rows[33].split()[1:]) == 17
    assert "identity" in lines[0]
    f1, f2 = plot_matrices(g), plot_graph(g)
    assert len(f1.axes) >= 3 and len(f2.axes) == 1


def test_large_graph_is_summarised_not_printed(cora):
    text = describe_matrices(cora)
    assert "2708 x 2708" in text and "10556 non-zeros" in text and "1.27% non-zero" in text
    assert len(text.splitlines()) < 10
