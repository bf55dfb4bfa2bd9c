"""PyG models: a GCN for node classification; GCN + readout and GIN for graph classification.

Node classification (Kipf & Welling 2017), 2 layers:
    Z = Â · ReLU(Â · dropout(X) · W₀) · W₁,   X (N, F), W₀ (F, 16), W₁ (16, C), Z (N, C) logits.

Graph classification: L graph convolutions give node vectors H (n, h); a readout (mean | sum |
max) turns the graph's n rows into one vector, then a small MLP gives the class logits (1, C).
GIN (Xu et al. 2019) replaces Â-averaging with h'_i = MLP((1 + ε) h_i + Σ_j ReLU(h_j + bond_ij W_e)),
a sum, injective on multisets, hence strictly more expressive than GCN + mean.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import GCNConv, GINConv, GINEConv, global_add_pool, global_max_pool, global_mean_pool
from torch_geometric.nn.dense.linear import Linear as PygLinear

from ..errors import ConvlensError
from .sparse import SparseFeatures, fast_dropout

READOUTS = {"mean": global_mean_pool, "sum": global_add_pool, "max": global_max_pool}


def _readout(name: str):
    if name not in READOUTS:
        raise ConvlensError(f"--readout {name!r}: use one of {', '.join(READOUTS)}")
    return READOUTS[name]


class _SparseAwareLinear(PygLinear):
    """``GCNConv``'s linear part, also accepting :class:`SparseFeatures` (X W as a sparse product).
    Same parameter names as PyG's, so state dicts load either way."""

    def forward(self, x):  # type: ignore[override]
        if isinstance(x, SparseFeatures):
            out = x.matmul(self.weight.t())
            return out if self.bias is None else out + self.bias
        return super().forward(x)


class GCN(nn.Module):
    """Kipf & Welling's GCN for node classification, built from PyG ``GCNConv`` layers.

    ``forward(x, edge_index)``: x (N, F) dense or :class:`SparseFeatures`, edge_index (2, E)
    -> logits (N, C). ``cached=True`` stores Â after the first call (full-batch training on one
    fixed graph); leave it off for mini-batches (NeighborLoader), where the graph changes.
    """

    def __init__(self, in_channels: int, hidden_channels: int = 16, out_channels: int = 2,
                 num_layers: int = 2, dropout: float = 0.5, cached: bool = False):
        super().__init__()
        if num_layers < 1:
            raise ConvlensError(f"--layers {num_layers}: a GCN needs at least 1 layer")
        dims = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        self.convs = nn.ModuleList(GCNConv(a, b, cached=cached) for a, b in zip(dims[:-1], dims[1:]))
        self.convs[0].lin = _SparseAwareLinear(in_channels, dims[1], bias=False, weight_initializer="glorot")
        self.dropout = dropout

    def forward(self, x, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None,
                return_hidden: bool = False):
        hidden = None
        for i, conv in enumerate(self.convs):
            x = x.dropout(self.dropout, self.training) if isinstance(x, SparseFeatures) else fast_dropout(x, self.dropout, self.training)
            x = conv(x, edge_index, edge_weight)
            if i < len(self.convs) - 1:
                x = F.relu(x)
                hidden = x
        return (x, hidden) if return_hidden else x


class GraphGCN(nn.Module):
    """GCN layers + readout (mean | sum | max) + MLP head, for one label per graph.

    Each layer: h' = ReLU(Â h W). ``jk=True`` (jumping knowledge) reads out every layer,
    input included, and concatenates: r = [pool(X) ‖ pool(H¹) ‖ ... ‖ pool(Hᴸ)] (B, F + L·h),
    so the head sees the atom composition and each radius of context; ``jk=False`` reads out
    the last layer only (B, h), the chapter's plain "average the node features".

    ``forward(x (n, F), edge_index (2, e), batch (n,))`` -> logits (B, C), B graphs in the batch.
    """

    def __init__(self, in_channels: int, hidden_channels: int = 64, out_channels: int = 2,
                 num_layers: int = 3, readout: str = "mean", dropout: float = 0.5, jk: bool = True,
                 edge_dim: int | None = None):
        super().__init__()
        self.pool = _readout(readout)
        dims = [in_channels] + [hidden_channels] * num_layers
        self.convs = nn.ModuleList(GCNConv(a, b) for a, b in zip(dims[:-1], dims[1:]))
        # GCN takes one scalar per edge, so bond types enter as a learnt weight per type
        # (w_t = exp(θ_t), starting at 1 = plain GCN); Â is then normalised with these weights.
        self.bond_logw = nn.Parameter(torch.zeros(edge_dim)) if edge_dim else None
        self.jk = jk
        width = in_channels + num_layers * hidden_channels if jk else hidden_channels
        self.head = nn.Sequential(nn.Linear(width, hidden_channels), nn.ReLU(),
                                  nn.Dropout(dropout), nn.Linear(hidden_channels, out_channels))

    def forward(self, x, edge_index, batch, edge_attr=None) -> torch.Tensor:
        pooled = [self.pool(x, batch)]
        w = None
        if self.bond_logw is not None and edge_attr is not None:
            w = (edge_attr.float() @ self.bond_logw).exp()  # one-hot (e, T) @ (T,) -> (e,)
        for conv in self.convs:
            x = F.relu(conv(x, edge_index, w))
            pooled.append(self.pool(x, batch))
        return self.head(torch.cat(pooled, dim=1) if self.jk else pooled[-1])


def _mlp(a: int, b: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU(), nn.Linear(b, b), nn.BatchNorm1d(b), nn.ReLU())


class GIN(nn.Module):
    """GIN (Xu et al. 2019); with ``edge_dim`` each layer is a ``GINEConv`` that adds the bond
    type (one-hot, (e, edge_dim)) to the neighbour's message. Readout: ``readout``-pool every
    layer's node vectors (input included) and sum the per-layer linear predictions.

    ``forward(x (n, F), edge_index (2, e), batch (n,), edge_attr (e, edge_dim))`` -> (B, C).
    """

    def __init__(self, in_channels: int, hidden_channels: int = 32, out_channels: int = 2,
                 num_layers: int = 4, readout: str = "sum", dropout: float = 0.5, edge_dim: int | None = None):
        super().__init__()
        self.pool = _readout(readout)
        self.edge_dim = edge_dim
        self.convs = nn.ModuleList(
            GINEConv(_mlp(a, hidden_channels), train_eps=True, edge_dim=edge_dim) if edge_dim else
            GINConv(_mlp(a, hidden_channels), train_eps=True) for a in [in_channels] + [hidden_channels] * (num_layers - 1))
        self.heads = nn.ModuleList([nn.Linear(in_channels, out_channels)] +
                                   [nn.Linear(hidden_channels, out_channels) for _ in range(num_layers)])
        self.dropout = dropout

    def forward(self, x, edge_index, batch, edge_attr=None) -> torch.Tensor:
        hs = [x]
        for conv in self.convs:
            x = conv(x, edge_index, edge_attr) if self.edge_dim else conv(x, edge_index)
            hs.append(x)
        return sum(F.dropout(head(self.pool(h, batch)), self.dropout, self.training) for h, head in zip(hs, self.heads))


GRAPH_MODELS = {"gcn": GraphGCN, "gin": GIN}


def create_graph_model(name: str, in_channels: int, out_channels: int, readout: str = "mean",
                       edge_dim: int | None = None, **kw) -> nn.Module:
    """``gcn`` -> :class:`GraphGCN`, ``gin`` -> :class:`GIN` (GINE when ``edge_dim`` is given)."""
    if name not in GRAPH_MODELS:
        raise ConvlensError(f"--model {name!r}: graph classification models are {', '.join(GRAPH_MODELS)}")
    return GRAPH_MODELS[name](in_channels, out_channels=out_channels, readout=readout, edge_dim=edge_dim, **kw)
