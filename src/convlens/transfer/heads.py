"""Heads trained on cached features: seconds instead of a backbone pass per image per epoch.

Both heads (``linear``: the chapter's loop; ``logreg``: scikit-learn's L-BFGS) are a single linear
map ``logits = W phi + b`` (W: (K, D), b: (K,)) copied into the backbone's own classifier, so the
saved model is an ordinary network. Both learn on standardised features ``z = (phi - mu) / sigma``
(mu, sigma of the training split; without it Adam at 1e-3 barely moves the bias-dominated ImageNet
features: 96.9% vs 98.0% on cat/dog), folded back into W and b: ``W' = W / sigma``, ``b' = b - W' mu``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..engine.optim import make_optimizer
from ..errors import ConvlensError

C_GRID = (0.01, 0.1, 1.0, 10.0)  # the inverse L2 strengths fit_logreg_head tries


@dataclass
class HeadEpoch:
    """One epoch of head training: the head's state after it and its metrics."""

    epoch: int
    state: dict[str, torch.Tensor]
    row: dict[str, Any]


def head_metrics(head: nn.Linear, X: torch.Tensor | None, y: torch.Tensor | None, prefix: str) -> dict[str, float | None]:
    """``{prefix}_loss`` and ``{prefix}_acc`` of a linear ``head`` on features ``X`` (N, D) with labels
    ``y`` (N,); both None for an absent or empty split."""
    if X is None or len(X) == 0:
        return {f"{prefix}_loss": None, f"{prefix}_acc": None}
    with torch.no_grad():
        logits = head(X)
        return {f"{prefix}_loss": float(F.cross_entropy(logits, y)), f"{prefix}_acc": float((logits.argmax(1) == y).float().mean())}


def train_linear_head(X: torch.Tensor, y: torch.Tensor, num_classes: int, views: torch.Tensor | None = None,
                      X_val: torch.Tensor | None = None, y_val: torch.Tensor | None = None,
                      X_test: torch.Tensor | None = None, y_test: torch.Tensor | None = None,
                      epochs: int = 13, batch_size: int = 32, lr: float = 1e-3, optimizer: str = "adam",
                      weight_decay: float = 0.0, seed: int = 0,
                      on_epoch: Callable[[HeadEpoch], None] | None = None) -> tuple[nn.Linear, list[dict[str, Any]]]:
    """Train ``Linear(D, K)`` on features X (N, D) (+ views (N, V, D)) with mini-batches; each epoch
    sees one random view (plain or augmented) of each image, as the chapter's augmentation would.

    Every epoch is evaluated on val and test features (cheap: a matrix product) and handed
    to ``on_epoch`` (which saves the checkpoint). Returns the last head and the history.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # (32, 1280) products are too small to share, and shared cores punish spinning
    try:
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        mu, sigma = robust_scale(X)
        head = nn.Linear(X.shape[1], num_classes)
        opt = make_optimizer(optimizer, head.parameters(), lr, weight_decay)
        pool = X.unsqueeze(1) if views is None else torch.cat([X.unsqueeze(1), views], dim=1)  # (N, 1+V, D)
        pool = (pool - mu) / sigma
        history: list[dict[str, Any]] = []
        for epoch in range(epochs):
            t0 = time.perf_counter()
            perm = torch.randperm(len(X), generator=g)
            pick = torch.randint(0, pool.shape[1], (len(X),), generator=g)  # which view of each image this epoch
            Xe = pool[torch.arange(len(X)), pick]
            tot_loss = tot_ok = 0.0
            for i in range(0, len(X), batch_size):
                idx = perm[i:i + batch_size]
                logits = head(Xe[idx])
                loss = F.cross_entropy(logits, y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                tot_loss += float(loss.detach()) * len(idx)
                tot_ok += float((logits.argmax(1) == y[idx]).sum())
            folded = fold_standardisation(head, mu, sigma)
            row: dict[str, Any] = {"epoch": epoch, "train_loss": tot_loss / len(X), "train_acc": tot_ok / len(X)}
            row |= head_metrics(folded, X_val, y_val, "val") | head_metrics(folded, X_test, y_test, "test")
            row["seconds"] = time.perf_counter() - t0
            row["images_per_s"] = len(X) / row["seconds"] if row["seconds"] > 0 else None
            history.append(row)
            if on_epoch is not None:
                on_epoch(HeadEpoch(epoch, {k: v.detach().clone() for k, v in folded.state_dict().items()}, row))
        return fold_standardisation(head, mu, sigma), history
    finally:
        torch.set_num_threads(threads)


def robust_scale(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, sigma) per feature, sigma floored at a tenth of the median std: pooled ReLU
    features that are almost always 0 would otherwise get weights of 1/1e-6, and the
    slightest change of the backbone (fine-tuning) would blow the logits up."""
    mu, sd = X.mean(0), X.std(0)
    return mu, sd.clamp_min(0.1 * float(sd.median()) + 1e-8)


def fold_standardisation(head: nn.Linear, mu: torch.Tensor, sigma: torch.Tensor) -> nn.Linear:
    """``W z + b`` with ``z = (phi - mu) / sigma`` as one map of phi: ``W/sigma phi + (b - W/sigma mu)``."""
    out = nn.Linear(head.in_features, head.out_features)
    with torch.no_grad():
        w = head.weight / sigma
        out.weight.copy_(w)
        out.bias.copy_(head.bias - w @ mu)
    return out


def fit_logreg_head(X: torch.Tensor, y: torch.Tensor, num_classes: int, seed: int = 0) -> tuple[nn.Linear, dict[str, Any]]:
    """Multinomial logistic regression on standardised features, folded into one ``nn.Linear``.

    ``C`` (inverse L2 strength) is chosen from :data:`C_GRID` by stratified 3-fold CV on (X, y) (1
    when a class has a single image). Returns the head and ``{"C": ..., "cv_acc": {C: acc}}``.
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    mu_t, sigma_t = robust_scale(X.double())
    Xn, mu, sigma = X.double().numpy(), mu_t.numpy(), sigma_t.numpy()
    Z = (Xn - mu) / sigma
    yn = y.numpy()
    info: dict[str, Any] = {}
    counts = np.bincount(yn, minlength=num_classes)
    folds = int(min(3, counts[counts > 0].min()))
    C = 1.0
    if folds >= 2:
        cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        scores = {c: float(cross_val_score(LogisticRegression(C=c, max_iter=3000), Z, yn, cv=cv).mean()) for c in C_GRID}
        C = max(scores, key=lambda c: (scores[c], -abs(np.log10(c))))  # ties: the C closest to 1
        info["cv_acc"] = scores
    clf = LogisticRegression(C=C, max_iter=3000).fit(Z, yn)
    W, b = clf.coef_, clf.intercept_
    if W.shape[0] == 1 and num_classes == 2:  # sklearn's binary form: one logit for class 1
        W = np.concatenate([-W / 2, W / 2])
        b = np.concatenate([-b / 2, b / 2])
    full_W = np.zeros((num_classes, X.shape[1]))
    full_b = np.full(num_classes, -1e4)  # classes absent from training are never predicted
    full_W[clf.classes_] = W / sigma
    full_b[clf.classes_] = b - (W / sigma) @ mu
    head = nn.Linear(X.shape[1], num_classes)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(full_W).float())
        head.bias.copy_(torch.from_numpy(full_b).float())
    info["C"] = C
    return head, info


def install_head(model: nn.Module, head: nn.Linear) -> None:
    """Copy a trained ``Linear(D, K)`` into the model's classifier (same shapes required)."""
    clf = model.get_classifier()
    if not isinstance(clf, nn.Linear) or clf.weight.shape != head.weight.shape:
        raise ConvlensError(f"{getattr(model, 'convlens_name', type(model).__name__)}: its classifier {clf} does not take the "
                            f"{head.in_features} pooled features directly; use the timm version of this backbone")
    with torch.no_grad():
        clf.weight.copy_(head.weight)
        clf.bias.copy_(head.bias)
