"""CIFAR-10 from every source it can come from, checked pixel for pixel on real images."""
from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from convlens.data import cifar10
from convlens.data.cifar10 import CLASSES, cached_splits, load_cifar10, read_pickles
from convlens.errors import DataError


def test_archive_subset_is_real_cifar(cifar_small, shared_data):
    tr, te = cifar_small["train"], cifar_small["test"]
    assert tr.images.shape == (200, 3, 32, 32) and te.images.shape == (200, 3, 32, 32)
    assert tr.images.dtype == torch.uint8 and tr.classes == CLASSES
    assert tr.class_counts() == dict.fromkeys(CLASSES, 20)
    # the first test image of class "cat", decoded here independently, is the tensor's image 60
    with tarfile.open(shared_data / "cifar10-images.tar.gz") as tar:
        data = tar.extractfile("test/cat/0000.jpg").read()
    want = torch.from_numpy(np.array(Image.open(io.BytesIO(data)).convert("RGB"))).permute(2, 0, 1)
    assert te.labels[60] == CLASSES.index("cat")
    assert torch.equal(te.images[60], want)
    # real photos, not blank: CIFAR's mean is ~0.47 of full scale
    assert 0.40 < tr.images.float().mean().item() / 255 < 0.55


def _write_tar(path: Path, splits) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for split, data in splits.items():
            for i, (img, y) in enumerate(zip(data.images, data.labels)):
                buf = io.BytesIO()
                Image.fromarray(img.permute(1, 2, 0).numpy()).save(buf, format="PNG")
                info = tarfile.TarInfo(f"{split}/{data.classes[y]}/{i:04d}.png")
                info.size = len(buf.getvalue())
                tar.addfile(info, io.BytesIO(buf.getvalue()))


def test_archive_decoded_once_then_cached(cifar_small, tmp_path, monkeypatch):
    monkeypatch.setenv("CONVLENS_CACHE", str(tmp_path / "cache"))
    tar = tmp_path / "small.tar.gz"
    _write_tar(tar, cifar_small)
    first = cached_splits(tar)
    assert torch.equal(first["train"].images, cifar_small["train"].images)  # PNG is lossless
    assert torch.equal(first["test"].labels, cifar_small["test"].labels)
    files = list((tmp_path / "cache" / "cifar10").glob("*.pt"))
    assert len(files) == 1 and not list((tmp_path / "cache" / "cifar10").glob(".*tmp"))

    def no_decoding(*a, **k):
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(cifar10, "read_archive", no_decoding)
    again = load_cifar10(data_dir=tar)
    assert torch.equal(again["train"].images, cifar_small["train"].images)
    # a changed archive (new mtime) is a new key: decoded afresh
    os.utime(tar, ns=(1, 1))
    with pytest.raises(AssertionError, match="decoded again"):
        cached_splits(tar)


def test_small_image_folder_same_way(cifar_small, tmp_path, monkeypatch):
    monkeypatch.setenv("CONVLENS_CACHE", str(tmp_path / "cache"))
    for split, data in cifar_small.items():
        for i, (img, y) in enumerate(zip(data.images[::10], data.labels[::10])):
            d = tmp_path / "imgs" / split / data.classes[y]
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img.permute(1, 2, 0).numpy()).save(d / f"{i}.png")
    from convlens.data.registry import load_dataset

    s = load_dataset("cifar10", data_dir=tmp_path / "imgs")
    assert torch.equal(s.train.images, cifar_small["train"].images[::10])
    assert s.classes == CLASSES and len(s.test) == 20


def _write_pickles(folder: Path, splits) -> None:
    folder.mkdir(parents=True)
    tr = splits["train"]
    for k in range(5):  # 200 training images over the five batches, 40 each
        part = slice(40 * k, 40 * (k + 1))
        batch = {"data": tr.images[part].reshape(40, -1).numpy(), "labels": tr.labels[part].tolist(), "batch_label": f"b{k}"}
        (folder / f"data_batch_{k + 1}").write_bytes(pickle.dumps(batch, protocol=2))
    te = splits["test"]
    (folder / "test_batch").write_bytes(pickle.dumps({"data": te.images.reshape(len(te), -1).numpy(), "labels": te.labels.tolist()}, protocol=2))


def test_official_pickles(cifar_small, tmp_path):
    _write_pickles(tmp_path / "cifar-10-batches-py", cifar_small)
    s = load_cifar10(data_dir=tmp_path)
    assert torch.equal(s["train"].images, cifar_small["train"].images)
    assert torch.equal(s["test"].labels, cifar_small["test"].labels)
    assert s["train"].source.endswith("cifar-10-batches-py")


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_crafted_pickle_does_not_run_code(cifar_small, tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _write_pickles(folder, cifar_small)
    marker = tmp_path / "pwned"
    (folder / "data_batch_3").write_bytes(pickle.dumps({"data": _Evil(marker), "labels": []}, protocol=2))
    # the payload is real: plain pickle would run it
    pickle.loads(pickle.dumps(_Evil(tmp_path / "control")))
    assert (tmp_path / "control").exists()
    with pytest.raises(DataError, match="data_batch_3.*refused to unpickle"):
        read_pickles(folder)
    assert not marker.exists()


def test_nothing_found_names_the_ways(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVLENS_CACHE", str(tmp_path))
    monkeypatch.setattr(cifar10, "shared_data_dir", lambda: None)
    with pytest.raises(DataError) as e:
        load_cifar10()
    msg = str(e.value)
    assert "\n" not in msg and "--data-dir" in msg and "--download" in msg and "cifar10-images.tar.gz" in msg
    with pytest.raises(DataError, match="--data-dir .*empty"):
        (tmp_path / "empty").mkdir()
        load_cifar10(data_dir=tmp_path / "empty")
