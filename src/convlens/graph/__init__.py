"""Graph convolutional networks: matrices made visible, node and graph classification
(CLI and notebook use: docs/graph.md).

Names are imported on first use (PEP 562), so ``convlens --help`` does not load PyG.
"""
from __future__ import annotations

from .._lazy import lazy_exports


_EXPORTS = {
    "cv": ["CVResult", "cross_validate", "stratified_folds"],
    "datasets": ["load_csv_graph", "load_karate", "load_mutag", "load_node_data", "load_planetoid"],
    "dense": ["DenseGCNLayer"],
    "matrices": ["adjacency", "degrees", "describe_matrices", "feature_matrix", "graph_matrices",
                 "normalized_adjacency", "normalized_adjacency_sparse", "plot_graph", "plot_matrices"],
    "models": ["GCN", "GIN", "GraphGCN", "create_graph_model"],
    "pipeline": ["train", "train_graphs", "train_nodes"],
    "show": ["load_any", "show_graph"],
    "sparse": ["SparseFeatures", "fast_dropout"],
    "fitting": ["NodeFit", "fit_node", "hidden_features"],
    "sampling": ["TorchNeighborSampler", "neighbor_loader", "fit_node_sampled"],
}
_WHERE = {name: mod for mod, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
