"""The CSV graph's 60/20/20 masks come from data.prepare's one stratified selection and equal
the masks of the graph package's own rule before they shared it (the old code is the oracle)."""
from __future__ import annotations

import torch
from torch_geometric.data import Data

from convlens.graph.datasets import _stratified_masks


def _old_masks(y: torch.Tensor, seed: int, fractions: tuple[float, float] = (0.6, 0.2)) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    masks = [torch.zeros(len(y), dtype=torch.bool) for _ in range(3)]
    for c in torch.unique(y):
        idx = (y == c).nonzero().view(-1)
        idx = idx[torch.randperm(len(idx), generator=g)]
        ntr, nva = max(1, round(fractions[0] * len(idx))), round(fractions[1] * len(idx))
        masks[0][idx[:ntr]] = True
        masks[1][idx[ntr:ntr + nva]] = True
        masks[2][idx[ntr + nva:]] = True
    return masks


def test_masks_equal_the_old_rule() -> None:
    gen = torch.Generator().manual_seed(3)
    # class sizes 1..7 and 40 (banker's rounding of 0.6 n and 0.2 n included), shuffled; a label never used
    ys = [torch.tensor([0, 1, 0, 2, 1, 0, 3, 1, 0, 2, 0, 1, 0, 0, 2, 1]), torch.tensor([0, 2, 2, 0, 2, 2]),
          torch.cat([torch.full((n,), c) for c, n in enumerate((1, 2, 3, 4, 5, 6, 7, 40))])[torch.randperm(68, generator=gen)]]
    for y in ys:
        for seed in (0, 1, 7):
            data = Data(y=y, num_nodes=len(y))
            _stratified_masks(data, seed)
            for new, old in zip((data.train_mask, data.val_mask, data.test_mask), _old_masks(y, seed)):
                assert torch.equal(new, old)
