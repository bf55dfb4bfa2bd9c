"""The feature cache: equal to a direct forward pass, invalidated by a changed file."""
from __future__ import annotations

import shutil
from pathlib import Path

import torch

from convlens.data.folders import load_image
from convlens.transfer.features import augment_view, extract_features, pooled_features


def _files(folder: Path, n: int) -> list[str]:
    return [str(p) for p in sorted((folder / "train" / "Cat").iterdir())[:n]]


def test_cached_features_equal_a_direct_forward_pass_and_follow_file_changes(lite0, small_catdog: Path, tmp_path: Path) -> None:
    work = tmp_path / "imgs"
    work.mkdir()
    files = []
    for p in _files(small_catdog, 3):
        files.append(str(shutil.copyfile(p, work / Path(p).name)))
    cache = tmp_path / "cache"
    first = extract_features(lite0, files, cache_dir=cache, progress=False)
    assert (first.computed, first.cached) == (3, 0) and first.features.shape == (3, 1280)
    direct = pooled_features(lite0.model, torch.stack([load_image(f, lite0.preprocess) for f in files]), lite0.mean, lite0.std)
    assert torch.allclose(first.features, direct, atol=1e-4)
    again = extract_features(lite0, files, cache_dir=cache, progress=False)
    assert (again.computed, again.cached) == (0, 3) and torch.equal(again.features, first.features)
    # change one file's contents: only it is recomputed, and its new features are right
    dog = sorted((small_catdog / "train" / "Dog").iterdir())[0]
    shutil.copyfile(dog, files[1])
    changed = extract_features(lite0, files, cache_dir=cache, progress=False)
    assert (changed.computed, changed.cached) == (1, 2)
    new_direct = pooled_features(lite0.model, load_image(files[1], lite0.preprocess)[None], lite0.mean, lite0.std)[0]
    assert torch.allclose(changed.features[1], new_direct, atol=1e-4)
    assert not torch.allclose(changed.features[1], first.features[1], atol=1e-2)
    assert torch.equal(changed.features[0], first.features[0])


def test_unreadable_files_are_remembered_and_views_are_deterministic(lite0, small_catdog: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 50)
    files = _files(small_catdog, 2) + [str(bad)]
    cache = tmp_path / "cache"
    a = extract_features(lite0, files, views=2, seed=5, cache_dir=cache, progress=False)
    assert a.index.tolist() == [0, 1] and len(a.skipped) == 1 and "bad.jpg" in a.skipped[0]
    assert a.views.shape == (2, 2, 1280) and not torch.allclose(a.views[:, 0], a.features, atol=1e-3)
    b = extract_features(lite0, files, views=2, seed=5, cache_dir=cache, progress=False)
    assert b.computed == 0 and b.skipped == a.skipped  # the bad file is not decoded again
    c = extract_features(lite0, files, views=2, seed=5, cache_dir=None, progress=False)
    assert torch.allclose(c.views, a.views, atol=1e-4)  # same seed -> same augmented views
    img = load_image(files[0], lite0.preprocess)
    assert torch.equal(augment_view(img, 1), augment_view(img, 1)) and not torch.equal(augment_view(img, 1), augment_view(img, 2))


def test_in_memory_images_are_resized_and_cached_by_content(lite0, tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    grey = torch.randint(0, 256, (3, 1, 28, 28), generator=g, dtype=torch.uint8)
    a = extract_features(lite0, grey, cache_dir=tmp_path, progress=False)
    assert a.features.shape == (3, 1280) and a.computed == 3
    b = extract_features(lite0, grey[[2, 0]], cache_dir=tmp_path, progress=False)
    assert b.computed == 0 and torch.equal(b.features, a.features[[2, 0]])
