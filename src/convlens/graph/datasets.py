"""Graphs to work on: the karate club, Cora/Citeseer (Planetoid), MUTAG (TU) and the user's CSVs.

Every loader returns PyTorch Geometric objects (:class:`~torch_geometric.data.Data`, or a
``TUDataset`` for many graphs) with two extra attributes a teacher needs: ``name`` and
``class_names``. Shapes: ``x`` (N, F) float, ``edge_index`` (2, E) long with both directions of
every undirected edge, ``y`` (N,) long for node tasks or (1,) for one graph of many.

Real files are read where they are and never written to: PyG processes links to them in a
cache folder (:func:`_pyg_dataset`).
"""
from __future__ import annotations

import csv
import hashlib
import os
import shutil
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .._runtime import cache_root, shared_data_dir
from ..data.prepare import hold_per_class
from ..errors import DataError

# Planetoid's label order, recovered from the class sizes (each size is unique in the original
# data sets; Citeseer's class 0 also holds the 15 isolated test nodes padded with zeros).
CORA_CLASSES = ["Theory", "Reinforcement_Learning", "Genetic_Algorithms", "Neural_Networks",
                "Probabilistic_Methods", "Case_Based", "Rule_Learning"]
CITESEER_CLASSES = ["AI", "ML", "IR", "DB", "Agents", "HCI"]
MUTAG_ATOMS = ["C", "N", "O", "F", "I", "Cl", "Br"]
MUTAG_BONDS = ["aromatic", "single", "double", "triple"]
MUTAG_CLASSES = ["non-mutagenic", "mutagenic"]
KARATE_CLASSES = ["Mr. Hi", "Officer"]

PLANETOID_NAMES = {"cora": "Cora", "citeseer": "CiteSeer"}
GRAPH_DATASETS = ("mutag",)
_PLANETOID_PARTS = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


def _link_raw(src_dir: Path, dst_dir: Path, names: Sequence[str]) -> None:
    """Make ``dst_dir/<name>`` point at ``src_dir/<name>`` (symlink, copy where links fail)."""
    dst_dir.mkdir(parents=True, exist_ok=True)
    for n in names:
        src, dst = src_dir / n, dst_dir / n
        if dst.is_symlink() and dst.resolve() == src.resolve():
            continue
        if dst.exists() or dst.is_symlink():
            dst.unlink()
        try:
            dst.symlink_to(src.resolve())
        except OSError:  # file systems without symlinks (some Windows set-ups)
            shutil.copyfile(src, dst)


def _find_raw(data_dir: str | os.PathLike | None, default_sub: str, names: Sequence[str], what: str) -> Path | None:
    """The folder holding all ``names``; ``None`` means "download" (no folder given, none at hand)."""
    if data_dir is not None:
        d = Path(data_dir).expanduser()
        for t in (d, d / "raw"):
            if all((t / n).is_file() for n in names):
                return t
        missing = [n for n in names if not (d / n).is_file()]
        raise DataError(f"--data-dir {d}: {what} files missing ({', '.join(missing[:3])}...); "
                        f"point it at the folder holding {names[0]} and its siblings")
    shared = shared_data_dir()
    if shared is not None and all((shared / default_sub / n).is_file() for n in names):
        return shared / default_sub
    return None


# ---- no file convlens reads can run code: raw pickles through a restricted unpickler, processed
# caches with torch.load(weights_only=True), caches keyed on the raw files they came from ---------
def raw_identity(src: Path | None, names: Sequence[str]) -> str:
    """A short key for the raw files a cache is built from: their resolved paths, sizes and
    modification times (``"download"`` when PyG downloads them). Another ``--data-dir``, or a
    file replaced or edited in place, gives another key, hence another processed cache: a stale
    one is never silently used instead of what the user pointed at."""
    if src is None:
        return "download"
    h = hashlib.sha256()
    for n in names:
        f = (src / n).resolve()
        st = f.stat()
        h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def vet_processed(processed_dir: Path) -> None:
    """Make a PyG processed folder safe to hand to PyG.

    PyG reads ``processed/data.pt`` with ``torch.load(weights_only=True)`` but falls back to
    ``weights_only=False`` (arbitrary code) when that fails, and reads ``pre_transform.pt`` /
    ``pre_filter.pt`` with ``weights_only=False`` outright. So: the two ``pre_*.pt`` files (only
    used for a warning) are removed, and a ``data.pt`` that does not load with
    ``weights_only=True`` is deleted, to be rebuilt from the raw files.
    """
    import torch_geometric  # noqa: F401 - registers PyG's classes as safe globals for weights_only

    for name in ("pre_transform.pt", "pre_filter.pt"):
        (processed_dir / name).unlink(missing_ok=True)
    data = processed_dir / "data.pt"
    if data.exists():
        try:
            torch.load(data, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - anything not plainly tensors is rebuilt from raw, never run
            shutil.rmtree(processed_dir, ignore_errors=True)


def _pyg_dataset(kind: str, pyg_name: str, files: list[str], data_dir: str | os.PathLike | None,
                 cache_dir: str | os.PathLike | None, make: Any, hint: str) -> Any:
    """``make(root)``: a PyG data set processed in ``<cache>/<kind>/<raw identity>/`` from links to
    the raw ``files`` (``data_dir``, the shared data folder, or PyG's download; PyG's readers want
    ``root/<Name>/raw`` and write ``root/<Name>/processed`` beside it), its cache vetted first."""
    src = _find_raw(data_dir, f"{kind}/raw" if kind == "planetoid" else f"{kind}/{pyg_name}/raw", files, pyg_name)
    root = cache_root(cache_dir) / kind / raw_identity(src, files)
    if src is not None:
        _link_raw(src, root / pyg_name / "raw", files)
    with warnings.catch_warnings():  # PyG prints "Processing..." and warns about torch.jit on first use
        warnings.simplefilter("ignore")
        vet_processed(root / pyg_name / "processed")
        try:
            return make(str(root))
        except DataError:
            raise
        except Exception as exc:  # a truncated raw file or no internet for the download
            what = "Planetoid" if kind == "planetoid" else kind.upper()
            raise DataError(f"{pyg_name}: could not read or download the {what} files into {root} ({exc}); "
                            f"pass --data-dir with the {hint}") from exc


def _planetoid_part(folder: Path, key: str, part: str) -> torch.Tensor | dict:
    """One Planetoid raw file: ``test.index`` is text (one node id a line); the others are
    Python 2 pickles of scipy.sparse / numpy arrays (``graph``: a dict node -> neighbours),
    read with :func:`convlens.safe_pickle.safe_load`, which refuses any other global."""
    path = folder / f"ind.{key}.{part}"
    if part == "test.index":
        try:
            return torch.tensor([int(t) for t in path.read_text().split()], dtype=torch.long)
        except ValueError as exc:
            raise DataError(f"{path}: not a list of node ids ({exc}); replace it with an original copy") from exc
    from ..safe_pickle import safe_load

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's deprecated module paths in the 2016 pickles
        out = safe_load(path)
    if part == "graph":
        if not isinstance(out, dict):
            raise DataError(f"{path}: expected a dict node -> neighbours, found {type(out).__name__}")
        return out
    out = out.todense() if hasattr(out, "todense") else out
    if not isinstance(out, np.ndarray):
        raise DataError(f"{path}: expected an array, found {type(out).__name__}; replace it with an original copy")
    return torch.from_numpy(np.asarray(out)).to(torch.float)


def read_planetoid(folder: Path, key: str) -> "torch_geometric.data.Data":
    """Build the Planetoid graph from its raw files (PyG's ``read_planetoid_data``, with every
    pickle read safely). Nodes: ``allx`` (labelled + unlabelled training pool) then the test
    nodes ``tx`` placed at the ids of ``test.index``; masks: the first ``len(y)`` nodes train,
    the next 500 validate, ``test.index`` tests."""
    from torch_geometric.data import Data
    from torch_geometric.io.planetoid import edge_index_from_dict
    from torch_geometric.utils import index_to_mask

    x, tx, allx, y, ty, ally, graph, test_index = (_planetoid_part(folder, key, p) for p in _PLANETOID_PARTS)
    sorted_test = test_index.sort()[0]
    if key == "citeseer":
        # isolated test nodes have no row in tx/ty: zero rows keep the ids contiguous
        span = int(test_index.max() - test_index.min()) + 1
        tx, ty = (torch.zeros(span, t.size(1), dtype=t.dtype).index_copy_(0, sorted_test - test_index.min(), t) for t in (tx, ty))
    feats = torch.cat([allx, tx], dim=0)
    feats[test_index] = feats[sorted_test]
    labels = torch.cat([ally, ty], dim=0).max(dim=1)[1]
    labels[test_index] = labels[sorted_test]
    n = labels.size(0)
    data = Data(x=feats, edge_index=edge_index_from_dict(graph, num_nodes=n), y=labels)
    data.train_mask = index_to_mask(torch.arange(y.size(0)), size=n)
    data.val_mask = index_to_mask(torch.arange(y.size(0), y.size(0) + 500), size=n)
    data.test_mask = index_to_mask(test_index, size=n)
    return data


def _safe_planetoid_class():
    from torch_geometric.datasets import Planetoid

    class SafePlanetoid(Planetoid):
        """PyG's Planetoid whose ``process`` reads the raw pickles with :func:`read_planetoid`."""

        def process(self) -> None:
            data = read_planetoid(Path(self.raw_dir), self.name.lower())
            self.save([data], self.processed_paths[0])

    return SafePlanetoid


def load_planetoid(name: str, data_dir: str | os.PathLike | None = None,
                   cache_dir: str | os.PathLike | None = None) -> "torch_geometric.data.Data":
    """Cora or Citeseer with the public split (20 labelled nodes per class, 500 val, 1,000 test).

    ``x`` is the raw 0/1 bag-of-words matrix (N, F): Cora 2,708 x 1,433, Citeseer 3,327 x 3,703.
    The processed cache lives in ``<cache>/planetoid/<raw identity>/`` (:func:`raw_identity`).
    """
    key = name.lower()
    if key not in PLANETOID_NAMES:
        raise DataError(f"unknown Planetoid data set {name!r}; use one of {', '.join(PLANETOID_NAMES)}")
    pyg_name = PLANETOID_NAMES[key]
    ds = _pyg_dataset("planetoid", pyg_name, [f"ind.{key}.{p}" for p in _PLANETOID_PARTS], data_dir, cache_dir,
                      lambda root: _safe_planetoid_class()(root, pyg_name, split="public"), f"ind.{key}.* files")
    data = ds[0]
    data.name = key
    data.class_names = CORA_CLASSES if key == "cora" else CITESEER_CLASSES
    return data


def load_karate() -> "torch_geometric.data.Data":
    """Zachary's karate club (34 members, 78 friendships), label = club after the split.

    No features: ``x`` is the identity (34, 34), so the first layer learns one vector per node.
    As in Kipf's demo, one labelled node per class: node 0 (Mr. Hi) and node 33 (the officer);
    ``test_mask`` is every other node; no validation nodes (training keeps the last epoch).
    """
    import networkx as nx
    from torch_geometric.data import Data

    g = nx.karate_club_graph()
    n = g.number_of_nodes()
    y = torch.tensor([KARATE_CLASSES.index(g.nodes[i]["club"]) for i in range(n)])
    und = torch.tensor(list(g.edges()), dtype=torch.long).t()
    edge_index = torch.cat([und, und.flip(0)], dim=1)
    train = torch.zeros(n, dtype=torch.bool)
    train[[0, 33]] = True
    data = Data(x=torch.eye(n), edge_index=edge_index, y=y, train_mask=train,
                val_mask=torch.zeros(n, dtype=torch.bool), test_mask=~train)
    data.name = "karate"
    data.class_names = KARATE_CLASSES
    return data


def load_mutag(data_dir: str | os.PathLike | None = None,
               cache_dir: str | os.PathLike | None = None) -> "torch_geometric.datasets.TUDataset":
    """MUTAG: 188 molecules; ``x`` one-hot atom type (n, 7), ``edge_attr`` one-hot bond type (e, 4)."""
    from torch_geometric.datasets import TUDataset

    files = [f"MUTAG_{p}.txt" for p in ("A", "graph_indicator", "graph_labels", "node_labels", "edge_labels")]
    ds = _pyg_dataset("tu", "MUTAG", files, data_dir, cache_dir, lambda root: TUDataset(root, "MUTAG", use_edge_attr=True),
                      "MUTAG_*.txt files")
    ds.class_names = MUTAG_CLASSES
    return ds


# ---- the user's own graph: nodes CSV (id, features..., label) + edges CSV (src, dst[, type]) ----
def _rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError(f"{path}: empty file; the first line must be a header") from None
        rows = [(reader.line_num, [c.strip() for c in r]) for r in reader if any(c.strip() for c in r)]
    return header, rows


def load_csv_graph(nodes_csv: str | os.PathLike, edges_csv: str | os.PathLike,
                   label_column: str = "label", self_loops: str = "drop") -> "torch_geometric.data.Data":
    """A node-classification graph from two CSV files; their format, the self loops (dropped with a
    warning, or rejected with ``self_loops="error"``) and the errors: docs/graph.md, "Your own graph
    as CSV". An edge-type column becomes ``edge_type`` ids (E,) and one-hot ``edge_attr`` (E, T).
    Nodes are split 60/20/20 into train/val/test, stratified, with seed 0.
    """
    from torch_geometric.data import Data

    nodes_csv, edges_csv = Path(nodes_csv), Path(edges_csv)
    header, rows = _rows(nodes_csv)
    if not header or header[0].lower() != "id":
        raise DataError(f"{nodes_csv}: line 1 must start with an 'id' column (got {header[:1]}); header is id,features...,{label_column}")
    if label_column not in header:
        raise DataError(f"{nodes_csv}: line 1 has no {label_column!r} column; add one (class name per node) or pass --label-column")
    li = header.index(label_column)
    feat_cols = [i for i in range(1, len(header)) if i != li]
    ids: dict[str, int] = {}
    feats, labels = [], []
    for line, r in rows:
        if len(r) != len(header):
            raise DataError(f"{nodes_csv}: line {line} has {len(r)} fields, the header has {len(header)}")
        nid = r[0]
        if nid in ids:
            raise DataError(f"{nodes_csv}: line {line}: duplicate node id {nid!r} (first seen as node {ids[nid]}); ids must be unique")
        if not r[li]:
            raise DataError(f"{nodes_csv}: line {line}: node {nid!r} has no {label_column}; give every node a class")
        try:
            feats.append([float(r[i]) for i in feat_cols])
        except ValueError:
            raise DataError(f"{nodes_csv}: line {line}: node {nid!r} has a non-numeric feature; features must be numbers") from None
        ids[nid] = len(ids)
        labels.append(r[li])
    if not ids:
        raise DataError(f"{nodes_csv}: no nodes after the header")
    class_names = sorted(set(labels))
    y = torch.tensor([class_names.index(lab) for lab in labels])
    x = torch.tensor(feats, dtype=torch.float) if feat_cols else torch.eye(len(ids))

    eh, erows = _rows(edges_csv)
    if len(eh) < 2 or [h.lower() for h in eh[:2]] != ["src", "dst"]:
        raise DataError(f"{edges_csv}: line 1 must be src,dst[,type] (got {','.join(eh)})")
    has_type = len(eh) >= 3
    pairs: dict[tuple[int, int], str] = {}
    dropped_loops = []
    for line, r in erows:
        if len(r) < 2:
            raise DataError(f"{edges_csv}: line {line} has {len(r)} field(s); need src,dst")
        for nid in r[:2]:
            if nid not in ids:
                raise DataError(f"{edges_csv}: line {line}: unknown node id {nid!r}; every src/dst must be an id in {nodes_csv.name}")
        a, b = ids[r[0]], ids[r[1]]
        if a == b:
            if self_loops == "error":
                raise DataError(f"{edges_csv}: line {line}: self loop on node {r[0]!r}; remove it (GCN adds its own self loops)")
            dropped_loops.append(line)
            continue
        pairs.setdefault((min(a, b), max(a, b)), r[2] if has_type and len(r) > 2 else "")
    if dropped_loops:
        warnings.warn(f"{edges_csv}: dropped {len(dropped_loops)} self loop(s) (line(s) {', '.join(map(str, dropped_loops[:5]))}"
                      f"{'...' if len(dropped_loops) > 5 else ''}): GCN's Â = D^-1/2 (A+I) D^-1/2 already gives each node one self loop",
                      stacklevel=2)
    und = torch.tensor(list(pairs), dtype=torch.long).t().reshape(2, -1)
    edge_index = torch.cat([und, und.flip(0)], dim=1)
    data = Data(x=x, edge_index=edge_index, y=y)
    if has_type:
        types = sorted(set(pairs.values()))
        t = torch.tensor([types.index(v) for v in pairs.values()], dtype=torch.long)
        data.edge_type = torch.cat([t, t])
        data.edge_attr = torch.nn.functional.one_hot(data.edge_type, len(types)).float()
        data.edge_type_names = types
    _stratified_masks(data, seed=0)
    data.name = nodes_csv.stem
    data.class_names = class_names
    data.node_ids = list(ids)
    data.dropped_self_loops = len(dropped_loops)
    return data


def _stratified_masks(data, seed: int, fractions: tuple[float, float] = (0.6, 0.2)) -> None:
    """train/val/test masks, the same share of every class in each (at least one train node per class).

    :func:`convlens.data.prepare.hold_per_class` taken twice with one seed draws the same
    permutation per class: its first ``n_train`` nodes train, the next ``n_val`` validate."""
    from torch_geometric.utils import index_to_mask

    counts = torch.bincount(data.y).tolist()
    n_train = [max(1, round(fractions[0] * n)) for n in counts]
    train = hold_per_class(data.y, n_train, seed)[1]
    test, train_val = hold_per_class(data.y, [t + round(fractions[1] * n) for t, n in zip(n_train, counts)], seed)
    data.train_mask, data.val_mask, data.test_mask = (index_to_mask(i, data.num_nodes) for i in (train, train_val, test))
    data.val_mask[train] = False


def load_node_data(name: str, data_dir: str | os.PathLike | None = None,
                   cache_dir: str | os.PathLike | None = None, edges: str | os.PathLike | None = None,
                   label_column: str = "label"):
    """``karate``, ``cora``, ``citeseer``, or a nodes CSV path (then ``edges`` is the edges CSV)."""
    key = str(name).lower()
    if key == "karate":
        return load_karate()
    if key in PLANETOID_NAMES:
        return load_planetoid(key, data_dir, cache_dir)
    if str(name).endswith(".csv") or Path(name).is_file():
        if edges is None:
            raise DataError(f"{name}: a nodes CSV needs its edges CSV too; pass --edges EDGES.csv (header src,dst[,type])")
        return load_csv_graph(name, edges, label_column=label_column)
    raise DataError(f"--data {name!r}: unknown; use karate, cora, citeseer, mutag, or a nodes CSV with --edges")
