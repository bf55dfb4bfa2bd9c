"""Training: full-batch node classification and 10-fold graph classification.

Full-batch GCN training is a plain loop on purpose: one step on Cora takes ~5 ms, so a
framework's per-step bookkeeping (Lightning callbacks, loggers, device moves) would cost more than
the step itself; 200 steps need no checkpoint resumption either.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .._runtime import seed_everything
from ..engine.guards import check_divergence
from ..engine.optim import make_optimizer
from ..errors import ConvlensError
from ..runs import BestBy
from .matrices import feature_matrix
from .models import GCN
from .sparse import SparseFeatures


@dataclass
class NodeFit:
    """What :func:`fit_node` returns: the model at its best validation epoch and the curves."""

    model: torch.nn.Module
    history: list[dict[str, Any]]
    best_epoch: int
    val_acc: float | None   # None when the graph has no validation nodes (karate)
    test_acc: float          # at the best validation epoch (model selection on val only)
    final_test_acc: float    # after the last epoch
    seconds: float           # wall time of the training loop (data prepared beforehand)
    extra: dict[str, Any] = field(default_factory=dict)


def row_normalize(x: torch.Tensor) -> torch.Tensor:
    """Each row divided by its sum (rows summing to 0 stay 0), as in Kipf & Welling's code."""
    s = x.sum(dim=1, keepdim=True)
    return x / s.clamp(min=1e-12)


def prepare_features(x: torch.Tensor) -> torch.Tensor | SparseFeatures:
    """Row-normalised X, stored sparse when less than 10% of it is non-zero (Cora: 1.3%)."""
    x = row_normalize(x.float())
    sparse = x.numel() > 10_000 and (x != 0).float().mean().item() < 0.10
    return SparseFeatures(x) if sparse else x


def gcn_optimizer(model: GCN, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """Adam, weight decay on the first layer only (Kipf & Welling; PyG's example does the same)."""
    return make_optimizer("adam", [{"params": model.convs[0].parameters(), "weight_decay": weight_decay},
                                   {"params": [p for c in model.convs[1:] for p in c.parameters()]}], lr)


def _acc(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> float | None:
    return float((pred[mask] == y[mask]).float().mean()) if bool(mask.any()) else None


def fit_node(data: Any, hidden: int = 16, epochs: int = 200, lr: float = 0.01, weight_decay: float = 5e-4,
             dropout: float = 0.5, seed: int = 0, layers: int = 2, progress: bool = False) -> NodeFit:
    """Train :class:`GCN` full-batch on ``data.train_mask``; select the epoch on ``val_mask``.

    Returns the model restored to its best-validation weights and one history row per epoch.
    Without validation nodes (karate) there is nothing to select on: the last epoch is kept.
    """
    if not bool(data.train_mask.any()):
        raise ConvlensError(f"{getattr(data, 'name', 'graph')}: no labelled training nodes (train_mask is empty)")
    seed_everything(seed)
    x = prepare_features(feature_matrix(data))
    y = data.y
    # edge_index, not a sparse CSR Âᵀ: torch's CSR backward re-sorts it every step (2x slower)
    ei = data.edge_index
    num_classes = int(y.max()) + 1
    model = GCN(x.size(1), hidden, num_classes, num_layers=layers, dropout=dropout, cached=True)
    opt = gcn_optimizer(model, lr, weight_decay)
    has_val = bool(data.val_mask.any())
    history: list[dict[str, Any]] = []
    rule = BestBy("val_acc" if has_val else "last")  # the run recorder's rule: val accuracy, ties to the lower val loss
    best, best_state, best_epoch = None, None, 0
    it = tqdm(range(epochs), desc=f"gcn on {getattr(data, 'name', 'graph')}", unit="epoch", leave=False, disable=not progress)
    t0 = time.perf_counter()
    for epoch in it:
        model.train()
        opt.zero_grad(set_to_none=True)
        out = model(x, ei)
        loss = F.cross_entropy(out[data.train_mask], y[data.train_mask])
        loss.backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            out = model(x, ei)
            pred = out.argmax(dim=1)
            val_loss = float(F.cross_entropy(out[data.val_mask], y[data.val_mask])) if has_val else None
        row = {"epoch": epoch, "train_loss": loss.item(), "train_acc": _acc(pred, y, data.train_mask),
               "val_loss": val_loss, "val_acc": _acc(pred, y, data.val_mask), "test_acc": _acc(pred, y, data.test_mask)}
        history.append(row)
        # a non-finite loss or weight never recovers (and t-SNE of NaN features segfaulted)
        check_divergence(row["train_loss"], epoch + 1, lr, model=model, num_classes=num_classes)
        score = rule.score(row)
        if score is not None and (best is None or score > best):
            best, best_epoch = score, epoch
            best_state = copy.deepcopy(model.state_dict())
    seconds = time.perf_counter() - t0
    model.load_state_dict(best_state)
    return NodeFit(model=model, history=history, best_epoch=best_epoch, val_acc=history[best_epoch]["val_acc"],
                   test_acc=history[best_epoch]["test_acc"] or 0.0, final_test_acc=history[-1]["test_acc"] or 0.0, seconds=seconds,
                   extra={"features": "sparse" if isinstance(x, SparseFeatures) else "dense", "x": x, "adj": ei})


@torch.no_grad()
def hidden_features(fit: NodeFit, data: Any) -> torch.Tensor:
    """The last hidden layer's node vectors (N, hidden), ReLU applied, best-val weights."""
    fit.model.eval()
    _, h = fit.model(fit.extra["x"], fit.extra["adj"], return_hidden=True)
    return h
