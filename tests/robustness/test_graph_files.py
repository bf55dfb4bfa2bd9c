"""No graph data file convlens reads can run code, and a --data-dir is never silently replaced
by an older processed cache. Planetoid's raw files are pickles; PyG reads them with plain
``pickle.load`` and its processed caches with ``torch.load`` falling back to
``weights_only=False``: a planted file ran code before convlens guarded both."""
from __future__ import annotations

import shutil
import warnings

import pytest
import torch

from convlens.errors import DataError
from convlens.graph.datasets import _PLANETOID_PARTS, load_mutag, load_planetoid, raw_identity, read_planetoid


class Planted:
    """Unpickling this calls ``open(marker, "w")``: the marker file proves code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


CORA_FILES = [f"ind.cora.{p}" for p in _PLANETOID_PARTS]


@pytest.fixture
def raw_copy(shared_data, tmp_path):
    """A writable copy of Cora's raw files (the shared folder is read-only)."""
    d = tmp_path / "raw"
    d.mkdir()
    for n in CORA_FILES:
        shutil.copy2(shared_data / "planetoid" / "raw" / n, d / n)
    return d


def test_pickle_in_place_of_a_raw_file_does_not_run(raw_copy, tmp_path):
    import pickle

    marker = tmp_path / "PWNED"
    (raw_copy / "ind.cora.x").write_bytes(pickle.dumps(Planted(marker), protocol=2))
    with pytest.raises(DataError, match=r"ind\.cora\.x: refused to unpickle"):
        load_planetoid("cora", raw_copy, tmp_path / "cache")
    assert not marker.exists()


@pytest.mark.parametrize("planted", ["data.pt", "pre_transform.pt", "pre_filter.pt"])
def test_planted_processed_cache_does_not_run_and_is_rebuilt(planted, shared_data, tmp_path):
    raw = shared_data / "planetoid" / "raw"
    cache = tmp_path / "cache"
    processed = cache / "planetoid" / raw_identity(raw, CORA_FILES) / "Cora" / "processed"
    processed.mkdir(parents=True)
    marker = tmp_path / "PWNED"
    torch.save({"x": Planted(marker)}, processed / planted)
    if planted != "data.pt":  # a processed data.pt beside it, as PyG leaves one
        load_planetoid("cora", raw, tmp_path / "other-cache")  # (not this cache)
    d = load_planetoid("cora", raw, cache)
    assert not marker.exists()
    assert (d.num_nodes, d.num_features, d.edge_index.size(1)) == (2708, 1433, 10556)
    # what is cached now loads without any code: plain tensors and PyG's registered classes
    import torch_geometric  # noqa: F401

    torch.load(processed / "data.pt", weights_only=True)


def test_planted_mutag_cache_does_not_run(shared_data, tmp_path):
    raw = shared_data / "tu" / "MUTAG" / "raw"
    files = [f"MUTAG_{p}.txt" for p in ("A", "graph_indicator", "graph_labels", "node_labels", "edge_labels")]
    processed = tmp_path / "tu" / raw_identity(raw, files) / "MUTAG" / "processed"
    processed.mkdir(parents=True)
    marker = tmp_path / "PWNED"
    torch.save(Planted(marker), processed / "data.pt")
    ds = load_mutag(raw, tmp_path)
    assert not marker.exists() and len(ds) == 188


def test_damaged_data_dir_is_not_hidden_by_an_older_cache(raw_copy, tmp_path):
    cache = tmp_path / "cache"
    good = load_planetoid("cora", raw_copy, cache)  # processes and caches the good files
    assert good.num_nodes == 2708
    damaged = tmp_path / "DAMAGED"
    shutil.copytree(raw_copy, damaged)
    x = damaged / "ind.cora.x"
    x.write_bytes(x.read_bytes()[: x.stat().st_size // 2])  # truncated
    with pytest.raises(DataError, match=r"ind\.cora\.x"):
        load_planetoid("cora", damaged, cache)
    # a raw file edited in place (same path, other size/time) is re-read too
    shutil.copy2(damaged / "ind.cora.x", raw_copy / "ind.cora.x")
    with pytest.raises(DataError, match=r"ind\.cora\.x"):
        load_planetoid("cora", raw_copy, cache)


@pytest.mark.parametrize("name", ["cora", "citeseer"])
def test_safe_reader_equals_pyg_reader(name, shared_data):
    from torch_geometric.io.planetoid import read_planetoid_data

    raw = shared_data / "planetoid" / "raw"
    ours = read_planetoid(raw, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = read_planetoid_data(str(raw), name)
    for key in ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(ours[key], ref[key]), key
