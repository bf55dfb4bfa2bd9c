"""The Layers and Graphs pages: a model's layer table, the convolution arithmetic playground,
and what one graph convolution does to karate / Cora.

The maths is the shapes and graph packages' (:func:`convlens.shapes.model_table`,
:func:`convlens.shapes.formula.output_size`, :func:`convlens.graph.matrices.graph_matrices`,
:class:`convlens.graph.dense.DenseGCNLayer`); this module draws and serialises.
"""
from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConvlensError
from ..runs import figure_png
from .image import PLOT_LOCK
from .pictures import data_uri

_NAME = re.compile(r"^[A-Za-z0-9_./-]{1,80}$")
MAX_PICTURE = 24  # padded inputs wider than this get the numbers but no grid picture


def layer_table(root: Path, spec: str, input: str | None = None) -> dict[str, Any]:
    """``spec``: a model name (convlens, timm, ``tv/<name>``) or ``run:<run folder>``."""
    from ..shapes import model_table

    if spec.startswith("run:"):
        from .files import safe_path

        p = safe_path(root, spec[4:])
        if p is None or not (p / "config.json").is_file():
            raise ConvlensError(f"model {spec!r}: no run folder {spec[4:]!r} under {root}")
        target: Any = p
    else:
        if not _NAME.match(spec) or ".." in spec:
            raise ConvlensError(f"model {spec!r}: give a model name such as cnn, resnet18 or tv/alexnet")
        target = spec
    table = model_table(target, input=input or None, check=False)
    return {"model": table.model_name, "input_shape": list(table.input_shape), "rows": table.to_records(),
            "totals": table.totals}


def conv_arithmetic(w: int, f: int, s: int, p: int) -> dict[str, Any]:
    """W2 = (W1 - F + 2P)/S + 1 with its arithmetic (``output_size``) and a picture."""
    from ..shapes.formula import output_size

    res = output_size(w, f, s, p, floor=False)
    res["picture"] = data_uri(sliding_window_png(w, f, s, p, res["output"])) if w + 2 * p <= MAX_PICTURE else None
    return res


def sliding_window_png(w: int, f: int, s: int, p: int, out: int) -> bytes:
    """The padded input (grey = zero padding), the first output row's window positions outlined
    (one colour per position), and the output row they make."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    n = w + 2 * p
    with PLOT_LOCK:
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(8.5, 4.2), gridspec_kw={"width_ratios": [n, max(out, 1)]})
        grid = np.ones((n, n))
        grid[p:p + w, p:p + w] = 0.0
        ax.imshow(grid, cmap="Greys", vmin=0, vmax=2.5, extent=(0, n, n, 0))
        _grid_lines(ax, n)
        colours = plt.get_cmap("tab10")
        for j in range(min(out, 10)):
            ax.add_patch(Rectangle((j * s + 0.08, 0.08 + 0.06 * (j % 3)), f - 0.16, f - 0.16, fill=False,
                                   ec=colours(j), lw=2))
        ax.set_title(f"input {w} + 2x{p} padding = {n}; {f}x{f} window, stride {s}", fontsize=9)
        o = np.zeros((out, out))
        o[0, :min(out, 10)] = 1
        ax2.imshow(o, cmap="Blues", vmin=0, vmax=2, extent=(0, out, out, 0))
        for j in range(min(out, 10)):
            ax2.add_patch(Rectangle((j + 0.1, 0.1), 0.8, 0.8, fill=False, ec=colours(j), lw=2))
        _grid_lines(ax2, out)
        ax2.set_title(f"output {out} x {out}", fontsize=9)
        fig.tight_layout()
        return figure_png(fig, dpi=80)


def _grid_lines(ax: Any, n: int) -> None:
    """An n x n grid of cell borders, without ticks."""
    for i in range(n + 1):
        ax.plot([i, i], [0, n], color="#999", lw=0.5)
        ax.plot([0, n], [i, i], color="#999", lw=0.5)
    ax.set_xticks([])
    ax.set_yticks([])


# ---- graphs ----------------------------------------------------------------------------------
GRAPHS = ("karate", "cora")
_graph_cache: dict[str, dict[str, Any]] = {}
_graph_lock = threading.Lock()


def graph_page(name: str) -> dict[str, Any]:
    """A, Â, X of the graph (pictures, and the numbers for karate) and one GCN layer
    H' = ReLU(Â X W + b) with Glorot-initialised W (seed 0, 2 outputs): X W and Â X W + b
    drawn as points, coloured by class: each node moves towards its neighbours' average."""
    if name not in GRAPHS:
        raise ConvlensError(f"graph {name!r}: choose one of {', '.join(GRAPHS)}")
    with _graph_lock:
        if name not in _graph_cache:
            _graph_cache[name] = _graph_page(name)
        return _graph_cache[name]


def _graph_page(name: str) -> dict[str, Any]:
    import matplotlib.pyplot as plt
    import torch

    from ..graph.datasets import load_node_data
    from ..graph.dense import DenseGCNLayer
    from ..graph.matrices import describe_matrices, graph_matrices, plot_matrices

    data = load_node_data(name)
    m = graph_matrices(data)
    torch.manual_seed(0)
    layer = DenseGCNLayer(m["X"].shape[1], 2)  # no activation: the picture shows Â X W + b itself
    with torch.no_grad():
        ax_ = m["A_hat"] @ m["X"]          # (N, F): every node's features averaged with its neighbours'
        z = layer(m["X"], m["A_hat"])      # (N, 2) = Â X W + b; H' = ReLU(z)
        h = torch.relu(z)
        xw = m["X"] @ layer.weight         # (N, 2): the same W without the neighbourhood
    y = data.y.numpy()
    classes = list(getattr(data, "class_names", None) or [str(c) for c in sorted(set(y.tolist()))])
    with PLOT_LOCK:
        matrices = figure_png(plot_matrices(data, title=f"{name}: A, Â and X"), dpi=70)
        fig, axes = plt.subplots(1, 2, figsize=(9, 4))
        for ax, pts, title in ((axes[0], xw.numpy(), "X W (no graph): each node alone"),
                               (axes[1], z.numpy(), "Â X W + b: each node averaged with its neighbours")):
            sc = ax.scatter(pts[:, 0], pts[:, 1], c=y, cmap="tab10", s=14 if len(y) < 100 else 3, vmin=0, vmax=9)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("output 0")
            ax.set_ylabel("output 1")
        handles = [plt.Line2D([], [], marker="o", ls="", color=sc.cmap(sc.norm(i))) for i in range(len(classes))]
        fig.legend(handles, classes, loc="lower center", ncol=min(len(classes), 7), fontsize=8)
        fig.suptitle(f"{name}: one untrained graph convolution, before its ReLU (W: {tuple(layer.weight.shape)}, "
                     "Glorot, seed 0)", fontsize=10)
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        gcn = figure_png(fig, dpi=80)
    n, f = m["X"].shape
    return {"name": name, "nodes": int(n), "edges": int(data.edge_index.size(1) // 2), "features": int(f),
            "classes": classes, "text": describe_matrices(data, max_nodes=40),
            "shapes": {"A": [n, n], "A_hat": [n, n], "X": [n, f], "AX": list(ax_.shape), "W": list(layer.weight.shape),
                       "H": list(h.shape)},
            "matrices": data_uri(matrices), "gcn": data_uri(gcn)}
