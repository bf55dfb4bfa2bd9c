"""Image folders as users have them: every bad case is made here, in tmp_path."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from convlens.data.folders import (Preprocess, class_balance_warnings, find_class_folders, holdout_indices, load_image,
                                   load_image_folder_splits, open_image, read_image_folder)
from convlens.errors import DataError

PP = Preprocess(image_size=32, crop_pct=1.0, interpolation="bilinear")


def _rgb(seed: int, size=(40, 30)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def _jpeg_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95, **kw)
    return buf.getvalue()


@pytest.fixture()
def messy(tmp_path: Path) -> Path:
    """A folder with one of each real-world problem; returns its root."""
    root = tmp_path / "messy"
    cat, dog, bird, empty = (root / c for c in ("cat", "dog", "bird", "empty"))
    for d in (cat, dog, bird, empty):
        d.mkdir(parents=True)
    for i in range(12):  # a large class: imbalance 12 : 1 against bird
        _rgb(i).save(cat / f"{i}.jpg")
    _rgb(100).save(dog / "bmp_named.jpg", format="BMP")                        # extension lies
    Image.fromarray(np.full((20, 20), 77, np.uint8), "L").save(dog / "grey.png")
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :10, 3] = 255                                                        # left half opaque red, right transparent
    Image.fromarray(rgba, "RGBA").save(dog / "rgba.png")
    pal = Image.new("P", (20, 20), 0)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.info["transparency"] = 0
    pal.save(dog / "palette.png", transparency=0)
    Image.new("CMYK", (20, 20), (0, 255, 255, 0)).save(dog / "cmyk.jpg")         # pure red in CMYK
    Image.fromarray(np.full((20, 20), 32896, np.uint16)).save(dog / "sixteen.png")  # 16-bit mid grey (128 * 257)
    tall = np.zeros((40, 20, 3), np.uint8)
    tall[:5] = 255                                                               # white band on top of a tall image
    exif = Image.Exif()
    exif[0x0112] = 8                                                             # stored rotated: display = rotate 90 ccw
    Image.fromarray(np.rot90(tall, k=-1).copy()).save(dog / "exif.jpg", exif=exif.tobytes())
    (dog / "truncated.jpg").write_bytes(_jpeg_bytes(_rgb(5, (64, 64)))[:600])
    (dog / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    (dog / "notes.txt").write_text("not an image")
    (dog / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    _rgb(7).save(bird / "only.png")                                              # single-image class
    return root


def test_bad_files_skipped_by_name_with_reason(messy: Path) -> None:
    logs: list[str] = []
    data = read_image_folder(messy, PP, progress=False, log=logs.append)
    assert data.classes == ["bird", "cat", "dog"]  # the empty folder is dropped, with a warning
    assert f"warning: {messy}: 1 empty class folder(s) ignored: empty" in logs
    skipped = {Path(s.split(": ")[0]).name: s for s in data.meta["skipped"]}
    assert set(skipped) == {"truncated.jpg", "corrupt.png", "notes.txt"}
    assert "truncated" in skipped["truncated.jpg"] and "not an image" in skipped["notes.txt"]
    assert all(Path(p).name not in skipped for p in data.paths)
    assert data.images.shape == (1 + 12 + 7, 3, 32, 32) and data.images.dtype == torch.uint8
    for name in skipped:  # every skipped file is printed by name
        assert any(name in m for m in logs)


def test_each_mode_decoded_right(messy: Path) -> None:
    dog = messy / "dog"
    assert open_image(dog / "bmp_named.jpg").size == (40, 30)  # read by content, not by name
    grey = load_image(dog / "grey.png", PP)
    assert grey.shape == (3, 32, 32) and int(grey.float().mean().round()) == 77
    rgba = np.asarray(open_image(dog / "rgba.png"))
    assert tuple(rgba[5, 2]) == (200, 0, 0) and tuple(rgba[5, 17]) == (255, 255, 255)  # transparent -> white, not black
    pal = np.asarray(open_image(dog / "palette.png"))
    assert tuple(pal[0, 0]) == (255, 255, 255)  # palette index 0 is transparent
    cmyk = np.asarray(open_image(dog / "cmyk.jpg")).astype(int)
    assert cmyk[..., 0].mean() > 200 and cmyk[..., 1].mean() < 60  # red stays red
    sixteen = np.asarray(open_image(dog / "sixteen.png", channels=1))
    assert abs(int(sixteen.mean()) - 128) <= 1  # scaled /257, not clipped to 255
    exif = np.asarray(open_image(dog / "exif.jpg"))
    assert exif.shape[:2] == (40, 20) and exif[:5].mean() > 200 and exif[-5:].mean() < 50  # upright, band on top


def test_strict_fails_naming_the_file(messy: Path) -> None:
    with pytest.raises(DataError, match=r"(truncated\.jpg|corrupt\.png|notes\.txt).*--strict"):
        read_image_folder(messy, PP, strict=True, progress=False, log=lambda m: None)


def test_imbalance_and_single_image_warnings(messy: Path) -> None:
    data = read_image_folder(messy, PP, progress=False, log=lambda m: None)
    warns = class_balance_warnings(data)
    assert any("'bird' has a single image" in w for w in warns)
    assert any("imbalanced" in w and "'cat' has 12" in w for w in warns)


def test_holdout_split_is_stratified_seeded_and_never_empties_a_class(messy: Path) -> None:
    logs: list[str] = []
    splits = load_image_folder_splits(messy, image_size=32, test_fraction=0.25, seed=3, progress=False, log=logs.append)
    tr, te = splits.train, splits.test
    assert len(tr) + len(te) == 20 and not set(tr.paths) & set(te.paths)
    counts_te = te.class_counts()
    assert counts_te == {"bird": 0, "cat": 3, "dog": 2}  # round(.25 * 12) = 3, round(.25 * 7) = 2, bird's only image stays
    again = load_image_folder_splits(messy, image_size=32, test_fraction=0.25, seed=3, progress=False, log=lambda m: None)
    assert again.test.paths == te.paths
    keep, hold = holdout_indices(torch.tensor([0, 0, 1, 1, 1]), 2, 0.01, seed=0)
    assert sorted(torch.tensor([0, 0, 1, 1, 1])[hold].tolist()) == [0, 1]  # at least one of each class with >= 2


def test_train_test_layout_and_foreign_test_class(tmp_path: Path) -> None:
    for split, n in (("train", 3), ("val", 2)):
        for c in ("a", "b"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(n):
                _rgb(hash((split, c, i)) % 1000).save(tmp_path / split / c / f"{i}.png")
    s = load_image_folder_splits(tmp_path, image_size=32, progress=False, log=lambda m: None)
    assert (len(s.train), len(s.test), s.classes) == (6, 4, ["a", "b"])  # val/ is accepted as the test split
    (tmp_path / "val" / "zebra").mkdir()
    _rgb(1).save(tmp_path / "val" / "zebra" / "z.png")
    with pytest.raises(DataError, match="zebra"):
        load_image_folder_splits(tmp_path, image_size=32, progress=False, log=lambda m: None)


def test_no_class_folders_is_one_clear_error(tmp_path: Path) -> None:
    _rgb(0).save(tmp_path / "loose.png")
    with pytest.raises(DataError, match="no class sub-folders"):
        find_class_folders(tmp_path)
    with pytest.raises(DataError, match="no such folder"):
        load_image_folder_splits(tmp_path / "missing")


def test_preprocess_equals_timm_eval_transform(shared_data: Path) -> None:
    """uint8 from our loader, normalised on the batch == timm's own eval transform."""
    from timm.data import create_transform

    pp = Preprocess(224, 0.875, "bicubic")
    ours = load_image(shared_data / "images" / "cat.jpg", pp).float() / 255.0
    ours = (ours - 0.5) / 0.5
    ref = create_transform(input_size=(3, 224, 224), interpolation="bicubic", crop_pct=0.875, mean=(0.5,) * 3, std=(0.5,) * 3)(
        Image.open(shared_data / "images" / "cat.jpg").convert("RGB"))
    assert torch.allclose(ours, ref, atol=1e-6)


def test_real_catanddog_bmps_are_read(shared_data: Path) -> None:
    root = shared_data / "catanddog"
    classes, files, skipped, _ = find_class_folders(root / "train")
    assert classes == ["Cat", "Dog"] and len(files) == 385 and not skipped
    every = [p for p in root.rglob("*.jpg")]
    bmps = [p for p in every if p.read_bytes()[:2] == b"BM"]
    assert len(bmps) == 6
    for p in bmps:
        assert open_image(p).mode == "RGB"
