import gzip

import pytest
import torch

from convlens.data import read_idx, write_idx
from convlens.data.fashion_mnist import load_fashion_mnist
from convlens.errors import DataError


def _make_set(folder, n_train=12, n_test=5, gz=True):
    g = torch.Generator().manual_seed(0)
    ext = ".gz" if gz else ""
    imgs = {s: torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8) for s, n in (("train", n_train), ("t10k", n_test))}
    labs = {s: torch.randint(0, 10, (len(v),), generator=g, dtype=torch.uint8) for s, v in imgs.items()}
    for s in imgs:
        write_idx(folder / f"{s}-images-idx3-ubyte{ext}", imgs[s])
        write_idx(folder / f"{s}-labels-idx1-ubyte{ext}", labs[s])
    return imgs, labs


def test_round_trip_hand_made_files(tmp_path):
    imgs, labs = _make_set(tmp_path)
    tr = load_fashion_mnist("train", data_dir=tmp_path)
    te = load_fashion_mnist("test", data_dir=tmp_path)
    assert tr.images.shape == (12, 1, 28, 28) and te.images.shape == (5, 1, 28, 28)
    assert torch.equal(tr.images[:, 0], imgs["train"]) and torch.equal(te.labels, labs["t10k"].long())


def test_uncompressed_files_read_too(tmp_path):
    imgs, _ = _make_set(tmp_path, gz=False)
    assert torch.equal(load_fashion_mnist("train", data_dir=tmp_path).images[:, 0], imgs["train"])


def test_header_bytes_are_parsed_big_endian(tmp_path):
    p = tmp_path / "x.idx"
    p.write_bytes(bytes([0, 0, 8, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + bytes(range(6)))
    assert read_idx(p).tolist() == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize("content, message", [
    (b"\x00\x00\x08", "too short"),
    (b"\x12\x34\x08\x01" + (3).to_bytes(4, "big") + b"abc", "magic"),
    (b"\x00\x00\x0d\x01" + (3).to_bytes(4, "big") + b"abc", "type code"),
    (b"\x00\x00\x08\x01" + (10).to_bytes(4, "big") + b"abc", "truncated"),
    (b"\x00\x00\x08\x01" + (2).to_bytes(4, "big") + b"abc", "longer than its header"),
    (b"\x00\x00\x08\x00", "dimensions"),
])
def test_bad_files_name_the_file(tmp_path, content, message):
    p = tmp_path / "bad-idx1-ubyte"
    p.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        read_idx(p)
    assert str(p) in str(info.value) and "\n" not in str(info.value)


def test_corrupt_gzip(tmp_path):
    p = tmp_path / "train-images-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + (100).to_bytes(4, "big") + bytes(100))[:30])
    with pytest.raises(DataError, match="corrupt or truncated gzip") as info:
        read_idx(p)
    assert str(p) in str(info.value)


def test_label_image_count_mismatch(tmp_path):
    _make_set(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", torch.zeros(11, dtype=torch.uint8))
    with pytest.raises(DataError, match="11 labels for 12 images"):
        load_fashion_mnist("train", data_dir=tmp_path)


def test_missing_data_lists_the_three_ways(tmp_path, monkeypatch):
    import convlens.data.fashion_mnist as fm

    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "nope")
    monkeypatch.setenv("CONVLENS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CONVLENS_FASHION_MNIST", raising=False)
    with pytest.raises(DataError) as info:
        load_fashion_mnist("train")
    msg = str(info.value)
    assert "--data-dir" in msg and "apt-get install dataset-fashion-mnist" in msg and "--download" in msg


def test_real_fashion_mnist(fashion):
    assert fashion.train.images.shape == (60000, 1, 28, 28) and fashion.test.images.shape == (10000, 1, 28, 28)
    assert set(fashion.train.class_counts().values()) == {6000}
    # published mean/std of the training images, which the models' pretrained_cfg carries
    x = fashion.train.images.float() / 255
    assert abs(x.mean().item() - 0.2860) < 1e-3 and abs(x.std().item() - 0.3530) < 1e-3


def test_unknown_dataset_lists_known():
    from convlens.data import load_dataset

    with pytest.raises(DataError, match="fashion-mnist"):
        load_dataset("imagenet-22k")


def test_inflated_bytes_are_cached_and_follow_the_file(tmp_path, monkeypatch):
    import os

    monkeypatch.setenv("CONVLENS_CACHE", str(tmp_path / "cache"))
    g = torch.Generator().manual_seed(1)
    first = torch.randint(0, 256, (1400, 28, 28), generator=g, dtype=torch.uint8)  # > 1 MB inflated
    path = write_idx(tmp_path / "imgs-idx3-ubyte.gz", first)
    assert torch.equal(read_idx(path), first)
    [entry] = (tmp_path / "cache" / "idx").iterdir()
    assert entry.stat().st_size == 16 + first.numel()
    assert torch.equal(read_idx(path), first)  # from the cache
    second = torch.randint(0, 256, (1400, 28, 28), generator=g, dtype=torch.uint8)
    write_idx(path, second)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # a new file, whatever the clock
    assert torch.equal(read_idx(path), second)
    from convlens.data.idx import _inflate_key

    current = _inflate_key(path)
    assert current != entry and current.is_file()
    current.write_bytes(b"\0\0")  # a damaged entry is ignored, and replaced
    assert torch.equal(read_idx(path), second) and current.stat().st_size == 16 + second.numel()
