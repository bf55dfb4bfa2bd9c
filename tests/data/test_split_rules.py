"""One stratified selection (``hold_per_class``) under two quota rules; both give exactly the
splits the two separate functions gave before they shared it (the old code is the oracle)."""
from __future__ import annotations

import torch

from convlens.data.prepare import holdout_indices, stratified_split


def _old_holdout(labels: torch.Tensor, num_classes: int, fraction: float, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    held = []
    for c in range(num_classes):
        idx = (labels == c).nonzero().flatten()
        n = len(idx)
        k = 0 if n < 2 or fraction <= 0 else min(n - 1, max(1, int(round(fraction * n))))
        held.append(idx[torch.randperm(n, generator=g)][:k])
    hold = torch.cat(held).sort().values
    mask = torch.ones(len(labels), dtype=torch.bool)
    mask[hold] = False
    return mask.nonzero().flatten(), hold


def _old_stratified(labels: torch.Tensor, num_classes: int, n_holdout: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    counts = torch.bincount(labels, minlength=num_classes).double()
    share = counts * (n_holdout / len(labels))
    quota = share.floor().long()
    quota[(share - quota).argsort(descending=True)[:n_holdout - int(quota.sum())]] += 1
    hold = [(lambda idx: idx[torch.randperm(len(idx), generator=g)][: int(quota[c])])((labels == c).nonzero().flatten())
            for c in range(num_classes)]
    held = torch.cat(hold)
    mask = torch.ones(len(labels), dtype=torch.bool)
    mask[held] = False
    return mask.nonzero().flatten(), held.sort().values


# unbalanced, shuffled, with a class of one image and an empty class (index 4)
LABELS = torch.tensor([0, 1, 0, 2, 1, 0, 3, 1, 0, 2, 0, 1, 0, 0, 2, 1])


def test_both_rules_give_the_old_splits() -> None:
    for seed in (0, 1, 7):
        for fraction in (0.0, 0.2, 0.5, 0.9):
            for new, old in zip(holdout_indices(LABELS, 5, fraction, seed), _old_holdout(LABELS, 5, fraction, seed)):
                assert torch.equal(new, old)
        for n in (1, 3, 5, 11):
            for new, old in zip(stratified_split(LABELS, 5, n, seed), _old_stratified(LABELS, 5, n, seed)):
                assert torch.equal(new, old)


def test_the_quota_rules() -> None:
    keep, hold = holdout_indices(LABELS, 5, 0.2)
    per_class = torch.bincount(LABELS[hold], minlength=5).tolist()
    assert per_class == [1, 1, 1, 0, 0]  # round(0.2 n) but at least one; never the single image of class 3
    assert sorted(keep.tolist() + hold.tolist()) == list(range(len(LABELS)))
    keep, hold = stratified_split(LABELS, 5, 5)
    assert len(hold) == 5 and torch.bincount(LABELS[hold], minlength=5).tolist() == [2, 2, 1, 0, 0]
