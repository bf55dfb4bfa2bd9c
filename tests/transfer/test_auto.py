"""``auto``: measured size and similarity pick different cases for clearly different data."""
from __future__ import annotations

from pathlib import Path

import torch

from convlens.transfer.auto import decide, logme
from convlens.transfer.features import extract_features


def test_auto_picks_head_only_for_cat_dog_and_fine_tuning_for_fashion(lite0, shared_data: Path, fashion) -> None:
    # 30 real photos per class (with 8, one hard image moves the probe by 6 points: too few to judge)
    files = [str(p) for c in ("Cat", "Dog") for p in sorted((shared_data / "catanddog" / "train" / c).iterdir())[:30]]
    labels = torch.tensor([0 if "/Cat/" in f else 1 for f in files])
    cat_dog = extract_features(lite0, files, cache_dir=None, progress=False)
    d1 = decide(cat_dog.features, labels[cat_dog.index], 2, n_stages=8)
    # Fashion-MNIST: 8 real images of each of the 10 classes, grey 28x28 -> RGB 224
    idx = torch.cat([(fashion.train.labels == c).nonzero().flatten()[:8] for c in range(10)])
    fm = extract_features(lite0, fashion.train.images[idx], cache_dir=None, progress=False)
    d2 = decide(fm.features, fashion.train.labels[idx], 10, n_stages=8)
    assert (d1.size, d1.similarity, d1.strategy) == ("small", "similar", "feature-extract"), d1.explain()
    assert (d2.size, d2.similarity, d2.strategy) == ("small", "dissimilar", "fine-tune")
    assert d2.unfreeze == 4 and d2.augment == "crop-flip"
    assert d1.probe_score > d2.probe_score + 0.2
    assert "probe accuracy" in d2.explain() and "LogME" in d2.explain()


def test_size_decides_between_the_large_cases() -> None:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(2400) % 2
    separable = torch.randn(2400, 64, generator=g) + 4.0 * y[:, None].float()
    noise = torch.randn(2400, 64, generator=g)
    big_similar = decide(separable, y, 2, n_stages=8)
    big_dissimilar = decide(noise, y, 2, n_stages=8)
    assert (big_similar.size, big_similar.strategy, big_similar.unfreeze) == ("large", "fine-tune", 2)
    assert (big_dissimilar.similarity, big_dissimilar.unfreeze) == ("dissimilar", -1)


def test_logme_ranks_informative_features_above_noise() -> None:
    g = torch.Generator().manual_seed(1)
    y = torch.arange(300) % 3
    good = torch.randn(300, 32, generator=g) + 3.0 * torch.nn.functional.one_hot(y, 32).float()
    bad = torch.randn(300, 32, generator=g)
    assert logme(good, y, 3) > logme(bad, y, 3) + 0.1
