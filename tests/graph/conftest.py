"""Tiny hand-made graphs (PyG style) and the real data sets, processed into a temporary cache."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Graph ops here are tiny (Cora: 2,708 x 16 activations); a second OpenMP thread only adds
    synchronisation, and on a loaded 2-core machine it made a 2 s run take 50 s."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("graph-cache")


@pytest.fixture
def path4() -> Data:
    """0 - 1 - 2 - 3 (a path), 2 features per node, classes 0,0,1,1."""
    ei = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    x = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [2.0, -1.0]])
    return Data(x=x, edge_index=ei, y=torch.tensor([0, 0, 1, 1]))


@pytest.fixture
def triangle_tail() -> Data:
    """Triangle 0-1-2 with a tail 2-3 and an isolated node 4 (degree 0: Â keeps only its self loop)."""
    und = torch.tensor([[0, 1, 0, 2], [1, 2, 2, 3]])
    return Data(edge_index=torch.cat([und, und.flip(0)], 1), num_nodes=5, y=torch.tensor([0, 0, 0, 1, 1]))


@pytest.fixture(scope="session")
def cora(shared_data, cache):
    from convlens.graph.datasets import load_planetoid

    return load_planetoid("cora", shared_data / "planetoid" / "raw", cache)


@pytest.fixture(scope="session")
def mutag(shared_data, cache):
    from convlens.graph.datasets import load_mutag

    return load_mutag(shared_data / "tu" / "MUTAG" / "raw", cache)
