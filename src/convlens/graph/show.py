"""``convlens graph show``: a graph's matrices printed (small graphs) and drawn (any size)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import DataError
from .datasets import MUTAG_ATOMS, MUTAG_BONDS, load_mutag, load_node_data
from .matrices import describe_matrices, plot_graph, plot_matrices


def load_any(name: str, index: int | None = None, data_dir: str | os.PathLike | None = None,
             cache_dir: str | os.PathLike | None = None, edges: str | os.PathLike | None = None,
             label_column: str = "label"):
    """One graph: karate, cora, citeseer, ``mutag`` (molecule ``index``, default 0) or a nodes CSV."""
    if str(name).lower() == "mutag":
        ds = load_mutag(data_dir, cache_dir)
        i = 0 if index is None else index
        if not 0 <= i < len(ds):
            raise DataError(f"--index {i}: MUTAG has molecules 0..{len(ds) - 1}")
        g = ds[i]
        atoms = g.x.argmax(dim=1)
        g.name = f"mutag[{i}] ({ds.class_names[int(g.y)]})"
        g.node_color = atoms
        g.color_names = MUTAG_ATOMS
        g.node_labels = {k: MUTAG_ATOMS[int(a)] for k, a in enumerate(atoms)}
        g.bond_counts = {MUTAG_BONDS[b]: int(c) // 2 for b, c in enumerate(g.edge_attr.sum(0).tolist()) if c}
        return g
    if index is not None:
        raise DataError(f"--index is for data sets of many graphs (mutag); {name} is a single graph")
    return load_node_data(name, data_dir, cache_dir, edges, label_column)


def show_graph(name: str, index: int | None = None, out: str | os.PathLike | None = None,
               data_dir: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
               edges: str | os.PathLike | None = None, max_print: int = 40, label_column: str = "label") -> dict[str, Any]:
    """Text of A, degrees, Â, X (``max_print`` nodes at most) and, with ``out``, two pictures:
    ``<out>/matrices.png`` (heat maps) and ``<out>/graph.png`` (drawing, colour = class).

    Returns ``{"data", "text", "files"}``.
    """
    g = load_any(name, index, data_dir, cache_dir, edges, label_column)
    text = describe_matrices(g, max_nodes=max_print)
    if hasattr(g, "bond_counts"):
        text += "\n\nbonds: " + ", ".join(f"{k} {v}" for k, v in g.bond_counts.items())
        text += "\nX columns (one-hot atom type): " + " ".join(MUTAG_ATOMS)
    files = []
    if out is not None:
        from ..runs import save_figure

        title = str(getattr(g, "name", name))
        color = getattr(g, "node_color", None)
        names = getattr(g, "color_names", None) or getattr(g, "class_names", None)
        files = [save_figure(fig, Path(out) / fname) for fname, fig in (
            ("matrices.png", plot_matrices(g, title=title)),
            ("graph.png", plot_graph(g, node_color=color, class_names=names,
                                     title=f"{title}: {g.num_nodes} nodes, colour = {'atom' if color is not None else 'class'}")))]
    return {"data": g, "text": text, "files": files}
