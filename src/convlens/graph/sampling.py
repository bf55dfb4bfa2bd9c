"""The scale path: mini-batches of target nodes with sampled neighbourhoods (GraphSAGE-style).

Each batch is B target nodes, each with at most k₁ sampled neighbours, each of those with k₂, ...
(one k per layer). PyG's ``NeighborLoader`` does the bookkeeping; its own sampler needs the
compiled ``pyg-lib`` or ``torch-sparse`` (docs/graph.md), so :class:`TorchNeighborSampler`
re-implements the homogeneous, directional case in plain torch.

Per hop, for frontier nodes v with in-degree d_v: all in-neighbours if d_v <= k, else k of
them uniformly without replacement (random keys, sorted within each node's segment).
"""
from __future__ import annotations

import time
import warnings
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch_geometric.loader import NeighborLoader
from torch_geometric.sampler import NeighborSampler, SamplerOutput

from .._runtime import seed_everything
from .fitting import _acc, gcn_optimizer, row_normalize
from .models import GCN


class TorchNeighborSampler(NeighborSampler):
    """``NeighborSampler`` whose homogeneous sampling runs in plain torch (no pyg-lib needed)."""

    def __init__(self, data, num_neighbors: Sequence[int], **kw):
        with warnings.catch_warnings():  # "using NeighborSampler without pyg-lib is deprecated"
            warnings.simplefilter("ignore")
            super().__init__(data, list(num_neighbors), **kw)
        if self.data_type.name != "homogeneous" or self.disjoint:
            raise NotImplementedError("TorchNeighborSampler: homogeneous, non-disjoint graphs only")
        self._local = torch.full((self.num_nodes,), -1, dtype=torch.long)

    def _sample(self, seed: torch.Tensor, seed_time=None, **kwargs):
        local = self._local
        seed = seed.to(torch.long)
        nodes = [seed]
        local[seed] = torch.arange(seed.numel())
        n_total = seed.numel()
        frontier = seed
        rows, cols, edges = [], [], []
        for k in self.num_neighbors.get_mapped_values():
            start, end = self.colptr[frontier], self.colptr[frontier + 1]
            deg = end - start
            total = int(deg.sum())
            seg = torch.repeat_interleave(torch.arange(frontier.numel()), deg)
            offs = torch.cumsum(deg, 0) - deg
            pos = start[seg] + (torch.arange(total) - offs[seg])  # CSC positions of all in-edges
            if k >= 0:
                key = seg.double() + torch.rand(total, dtype=torch.double)  # random order inside each segment
                order = torch.argsort(key)
                rank = torch.arange(total) - offs[seg[order]]
                keep = order[rank < k]
                pos, seg = pos[keep], seg[keep]
            src = self.row[pos]
            new = torch.unique(src[local[src] < 0])
            local[new] = torch.arange(n_total, n_total + new.numel())
            n_total += new.numel()
            nodes.append(new)
            rows.append(local[src])
            cols.append(local[frontier[seg]])
            edges.append(pos)
            frontier = new
        node = torch.cat(nodes)
        local[node] = -1  # reset for the next batch
        cat = lambda ts: torch.cat(ts) if ts else torch.empty(0, dtype=torch.long)  # noqa: E731
        return SamplerOutput(node=node, row=cat(rows), col=cat(cols), edge=cat(edges), batch=None,
                             num_sampled_nodes=[n.numel() for n in nodes], num_sampled_edges=[e.numel() for e in edges])


def neighbor_loader(data, num_neighbors: Sequence[int] = (10, 10), batch_size: int = 512,
                    input_nodes: torch.Tensor | None = None, shuffle: bool = True):
    """PyG ``NeighborLoader`` over ``data`` with :class:`TorchNeighborSampler` (no workers).

    Each batch is a ``Data`` whose first ``batch.batch_size`` nodes are the targets (``n_id``
    maps local to global ids); loss and accuracy are taken on those rows only.
    """
    sampler = TorchNeighborSampler(data, num_neighbors)
    return NeighborLoader(data, num_neighbors=list(num_neighbors), batch_size=batch_size, input_nodes=input_nodes,
                          shuffle=shuffle, neighbor_sampler=sampler, num_workers=0)


def fit_node_sampled(data, hidden: int = 16, epochs: int = 20, lr: float = 0.01, weight_decay: float = 5e-4,
                     dropout: float = 0.5, num_neighbors: Sequence[int] = (10, 10), batch_size: int = 64,
                     seed: int = 0) -> dict[str, Any]:
    """Mini-batch GCN training with sampled neighbourhoods; evaluation on the full graph
    (layer-wise inference would be the next step for graphs that do not fit in memory)."""
    seed_everything(seed)
    data = data.clone()
    data.x = row_normalize(data.x.float())
    model = GCN(data.num_features, hidden, int(data.y.max()) + 1, dropout=dropout, cached=False)
    opt = gcn_optimizer(model, lr, weight_decay)
    loader = neighbor_loader(data, num_neighbors, batch_size, input_nodes=data.train_mask)
    history, t0 = [], time.perf_counter()
    for epoch in range(epochs):
        model.train()
        for b in loader:
            opt.zero_grad(set_to_none=True)
            out = model(b.x, b.edge_index)[: b.batch_size]
            loss = F.cross_entropy(out, b.y[: b.batch_size])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            pred = model(data.x, data.edge_index).argmax(1)
        history.append({"epoch": epoch, "train_loss": loss.item(), "val_acc": _acc(pred, data.y, data.val_mask),
                        "test_acc": _acc(pred, data.y, data.test_mask)})
    return {"model": model, "history": history, "seconds": time.perf_counter() - t0,
            "test_acc": history[-1]["test_acc"]}
