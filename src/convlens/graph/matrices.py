"""The matrices of a graph convolution, A, deg, Â and X, computed and drawn (their shapes and
meaning: docs/graph.md, "The maths, with shapes").

The dense forms are for teaching and small graphs; :func:`normalized_adjacency_sparse` gives the
same Â as a sparse CSR matrix for graphs of any size.
"""
from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np
import torch


def adjacency(edge_index: torch.Tensor, num_nodes: int, edge_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Dense A (N, N) with A[dst, src] = weight (1 by default); duplicate edges add up."""
    w = torch.ones(edge_index.size(1)) if edge_weight is None else edge_weight.float()
    A = torch.zeros(num_nodes, num_nodes)
    A.index_put_((edge_index[1], edge_index[0]), w, accumulate=True)
    return A


def degrees(edge_index: torch.Tensor, num_nodes: int, edge_weight: torch.Tensor | None = None) -> torch.Tensor:
    """deg (N,) = row sums of A (in-degree = degree for undirected graphs)."""
    w = torch.ones(edge_index.size(1)) if edge_weight is None else edge_weight.float()
    return torch.zeros(num_nodes).index_add_(0, edge_index[1], w)


def normalized_adjacency(edge_index: torch.Tensor, num_nodes: int, edge_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Dense Â = D̃^-1/2 (A + I) D̃^-1/2, (N, N), D̃ = diag(deg + 1): every node keeps itself and a
    message from j to i is scaled by 1 / sqrt(d̃_i d̃_j), so repeated products Â Â ... H neither blow
    up nor vanish (eigenvalues in (-1, 1]). Existing self loops are replaced by one of weight 1, as
    PyG's ``gcn_norm`` does, so this equals what ``GCNConv`` multiplies by."""
    A = adjacency(edge_index, num_nodes, edge_weight)
    A.fill_diagonal_(0.0)
    A_tilde = A + torch.eye(num_nodes)
    d = A_tilde.sum(dim=1)
    d_inv_sqrt = d.pow(-0.5)
    d_inv_sqrt[torch.isinf(d_inv_sqrt)] = 0.0
    return d_inv_sqrt[:, None] * A_tilde * d_inv_sqrt[None, :]


def normalized_adjacency_sparse(edge_index: torch.Tensor, num_nodes: int,
                                edge_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Â as a sparse CSR tensor (N, N) with nnz = E + N: memory O(E), product Â H in O(E F)."""
    from torch_geometric.nn.conv.gcn_conv import gcn_norm

    ei, w = gcn_norm(edge_index, edge_weight, num_nodes, add_self_loops=True)
    with warnings.catch_warnings():  # torch: "sparse CSR support is in beta"
        warnings.simplefilter("ignore")
        coo = torch.sparse_coo_tensor(torch.stack([ei[1], ei[0]]), w, (num_nodes, num_nodes), check_invariants=False)
        return coo.coalesce().to_sparse_csr()


def feature_matrix(data: Any) -> torch.Tensor:
    """X (N, F): the node features, or the identity I_N when the graph has none."""
    x = getattr(data, "x", None)
    return torch.eye(data.num_nodes) if x is None else x.float()


def graph_matrices(data: Any) -> dict[str, torch.Tensor]:
    """``{"A", "deg", "A_hat", "X"}`` for a PyG ``Data`` (dense; fine up to ~20k nodes)."""
    n = data.num_nodes
    w = getattr(data, "edge_weight", None)
    return {
        "A": adjacency(data.edge_index, n, w),
        "deg": degrees(data.edge_index, n, w),
        "A_hat": normalized_adjacency(data.edge_index, n, w),
        "X": feature_matrix(data),
    }


def _fmt_matrix(M: torch.Tensor, decimals: int, labels: Sequence[str] | None = None, max_cols: int = 40) -> str:
    M = M.detach().cpu().float()
    if M.dim() == 1:
        M = M[None, :]
    shown = M[:, :max_cols]
    cells = [[("0" if v == 0 else f"{v:.{decimals}f}".rstrip("0").rstrip(".")) if decimals else f"{v:g}" for v in row.tolist()] for row in shown]
    w = max(len(c) for row in cells for c in row)
    lw = max((len(s) for s in labels), default=0) if labels else 0
    lines = []
    for i, row in enumerate(cells):
        lab = f"{labels[i]:>{lw}} " if labels else ""
        lines.append(lab + " ".join(c.rjust(w) for c in row) + (" ..." if M.size(1) > max_cols else ""))
    return "\n".join(lines)


def describe_matrices(data: Any, max_nodes: int = 40, decimals: int = 2) -> str:
    """A, deg, Â and X as text. Graphs with more than ``max_nodes`` nodes get sizes and
    statistics instead of the full matrices (a 2,708 x 2,708 matrix is not readable as text)."""
    m = graph_matrices(data) if data.num_nodes <= max_nodes else None
    n, e = data.num_nodes, data.edge_index.size(1)
    x = feature_matrix(data)
    lines = [f"graph {getattr(data, 'name', '')}: N = {n} nodes, {e} directed edges ({e // 2} undirected), "
             f"X is {tuple(x.shape)}{' (identity: no node features)' if getattr(data, 'x', None) is None or _is_identity(x) else ''}"]
    if m is None:
        deg = degrees(data.edge_index, n)
        lines.append(f"A: {n} x {n}, {e} non-zeros ({e / max(n * n, 1):.3%} dense); degrees min {deg.min():g}, "
                     f"mean {deg.mean():.2f}, max {deg.max():g}; Â = D^-1/2 (A+I) D^-1/2 has {e + n} non-zeros")
        nz = (x != 0).float().mean().item()
        lines.append(f"X: {tuple(x.shape)}, {nz:.2%} non-zero; use the pictures (--out) to see the matrices")
        return "\n".join(lines)
    names = getattr(data, "node_labels", None) or {}
    labels = [f"{i} {names[i]}" if i in names else str(i) for i in range(n)]
    lines += ["", "A (adjacency):", _fmt_matrix(m["A"], 0, labels),
              "", "degrees:", _fmt_matrix(m["deg"], 0),
              "", "Â = D^-1/2 (A+I) D^-1/2:", _fmt_matrix(m["A_hat"], decimals, labels),
              "", f"X (features, {tuple(m['X'].shape)}):", _fmt_matrix(m["X"], decimals, labels)]
    return "\n".join(lines)


def _is_identity(x: torch.Tensor) -> bool:
    return x.dim() == 2 and x.size(0) == x.size(1) and bool(torch.equal(x, torch.eye(x.size(0))))


def plot_matrices(data: Any, title: str = "") -> "matplotlib.figure.Figure":
    """Heat maps of A, Â and X side by side (nodes sorted by class, so communities show as blocks)."""
    import matplotlib.pyplot as plt

    from ..figures import use_cjk_font
    from ..i18n import t
    from ..reports.plots import finish

    use_cjk_font([title])
    n = data.num_nodes
    order = torch.argsort(data.y, stable=True) if getattr(data, "y", None) is not None and data.y.numel() == n else torch.arange(n)
    m = graph_matrices(data)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    for ax, key, name in zip(axes, ("A", "A_hat", "X"), ("A", "Â = D^-1/2 (A+I) D^-1/2", "X")):
        M = m[key][order][:, order] if key != "X" else m[key][order]
        M = M.numpy()
        if n > 300 and key != "X":
            # imshow would average 2,708 rows into a few hundred pixels and hide every edge
            r, c = np.nonzero(M)
            ax.scatter(c, r, s=0.2, c=M[r, c], cmap="viridis", marker="s", linewidths=0)
            ax.set_xlim(-0.5, n - 0.5)
            ax.set_ylim(n - 0.5, -0.5)
            ax.set_aspect("equal")
        else:
            im = ax.imshow(M, cmap="viridis", interpolation="nearest", aspect="auto" if key == "X" else "equal")
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        ax.set_title(f"{name}  {M.shape[0]} x {M.shape[1]}")
        ax.set_xlabel(t("feature") if key == "X" else t("node_sorted"))
        ax.set_ylabel(t("node_sorted"))
    return finish(fig, title)


def plot_graph(data: Any, node_color: Sequence[int] | torch.Tensor | None = None,
               class_names: Sequence[str] | None = None, title: str = "", seed: int = 0) -> "matplotlib.figure.Figure":
    """The graph drawn with a spring layout, node colour = class (``data.y`` by default)."""
    import matplotlib.pyplot as plt
    import networkx as nx

    n = data.num_nodes
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(data.edge_index.t().tolist())
    colors = data.y if node_color is None else node_color
    colors = np.asarray(colors.tolist() if hasattr(colors, "tolist") else colors)
    if colors.size != n:  # graph-level label: one colour for all
        colors = np.zeros(n, dtype=int)
    class_names = list(class_names or getattr(data, "class_names", None) or [str(c) for c in range(int(colors.max()) + 1)])
    pos = nx.spring_layout(g, seed=seed, iterations=50 if n <= 1000 else 30)
    size = 6 if n <= 100 else 9
    fig, ax = plt.subplots(figsize=(size, size))
    nx.draw_networkx_edges(g, pos, ax=ax, alpha=0.5 if n <= 200 else 0.15, width=1.0 if n <= 200 else 0.3)
    cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    for c, cname in enumerate(class_names):
        nodes = [i for i in range(n) if colors[i] == c]
        if nodes:
            nx.draw_networkx_nodes(g, pos, nodelist=nodes, node_color=[cmap(c % cmap.N)], ax=ax,
                                   node_size=200 if n <= 100 else (20 if n <= 1000 else 6), label=cname)
    if n <= 60:
        nx.draw_networkx_labels(g, pos, labels=getattr(data, "node_labels", None) or {i: str(i) for i in range(n)},
                                font_size=7, ax=ax)
    ax.legend(loc="best", fontsize=8, markerscale=1 if n <= 100 else 3)
    ax.set_title(title or f"{getattr(data, 'name', 'graph')}: {n} nodes, colour = class")
    ax.axis("off")
    fig.tight_layout()
    return fig
