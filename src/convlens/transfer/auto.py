"""``--strategy auto``: the chapter's four cases, decided from measurements on the cached features
of the training split, never the test split. docs/transfer.md has the table, the two measures
(size; similarity ``s = (acc - 1/K) / (1 - 1/K)`` of the better held-out probe, LogME beside it)
and the runs.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from .config import TransferConfig

CASES = {
    ("small", "similar"): ("feature-extract", None, "none", "head only: the frozen features already separate the classes"),
    ("large", "similar"): ("fine-tune", 2, "crop-flip", "later blocks + head: enough data to adapt the last stages"),
    ("small", "dissimilar"): ("fine-tune", "half", "crop-flip", "some blocks + head with augmentation: features need adapting, data are few"),
    ("large", "dissimilar"): ("fine-tune", -1, "crop-flip", "whole network, pretrained layers at lr/10: enough data to adapt everything"),
}


@dataclass
class AutoDecision:
    """What ``auto`` chose and the numbers it chose from."""

    strategy: str
    unfreeze: int | None
    augment: str
    size: str
    similarity: str
    reason: str
    n_train: int
    per_class_median: float
    probe_acc: float
    probe_score: float
    chance: float
    logme: float
    large_per_class: int
    similar_threshold: float
    logreg_acc: float = float("nan")
    centroid_acc: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def explain(self) -> str:
        what = self.strategy if self.unfreeze is None else f"{self.strategy} --unfreeze {self.unfreeze}"
        if self.unfreeze == -1:
            what = f"{self.strategy} (whole network)"
        return (f"auto: {self.size} data set ({self.n_train} training images, median {self.per_class_median:.0f} per class; "
                f"large >= {self.large_per_class}) x {self.similarity} to ImageNet (frozen-feature probe accuracy "
                f"{self.probe_acc:.1%} on train, held out: logistic regression 5-fold {self.logreg_acc:.1%}, nearest class mean "
                f"leave-one-out {self.centroid_acc:.1%}; chance {self.chance:.1%}, rescaled {self.probe_score:.2f}; "
                f"similar >= {self.similar_threshold:.2f}; LogME {self.logme:.3f}) -> {what}: {self.reason}")


def decision_notes(decision: dict[str, Any] | None) -> list[str]:
    """A report's line on what ``auto`` decided and why (none when it decided nothing)."""
    return [AutoDecision(**decision).explain()] if decision else []


def logme(features: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray, num_classes: int | None = None,
          max_iter: int = 100, tol: float = 1e-3) -> float:
    """LogME score (You et al. 2021) of features (N, D) for labels (N,).

    For each class k, the targets y = [label == k] get the model y = F w + e with prior
    w ~ N(0, 1/alpha I) and noise e ~ N(0, 1/beta); alpha and beta are set by the
    fixed-point iteration of evidence maximisation, using F = U S V^T:
    ``gamma = sum_i beta s_i^2 / (alpha + beta s_i^2)``, ``alpha = gamma / |m|^2``,
    ``beta = (N - gamma) / |y - F m|^2``. The score is the evidence per sample
    ``L/N = D/2 log alpha + N/2 log beta - alpha/2 |m|^2 - beta/2 |y - F m|^2
    - 1/2 log det(alpha I + beta F^T F) - N/2 log 2 pi``, averaged over classes.
    """
    f = np.asarray(features, dtype=np.float64)
    y_all = np.asarray(labels).astype(np.int64)
    k_classes = int(num_classes or (y_all.max() + 1))
    n, d = f.shape
    u, s, _ = np.linalg.svd(f, full_matrices=False)  # u (N, r), s (r,)
    sigma = s ** 2

    def terms(x2: np.ndarray, res_perp: float, t: float) -> tuple[float, float]:  # |m|^2, |y - F m|^2 at alpha/beta = t
        return float((sigma * x2 / (sigma + t) ** 2).sum()), float((x2 / (1 + sigma / t) ** 2).sum()) + res_perp

    scores = []
    for k in range(k_classes):
        y = (y_all == k).astype(np.float64)
        x = u.T @ y  # projections of y on the left singular vectors, (r,)
        x2 = x ** 2
        res_perp = float(y @ y - x2.sum())  # |y|^2 outside span(F)
        alpha, beta = 1.0, 1.0
        for _ in range(max_iter):
            t = alpha / beta
            gamma = float((sigma / (sigma + t)).sum())
            m2, res2 = terms(x2, res_perp, t)
            new_alpha = gamma / (m2 + 1e-12)
            new_beta = (n - gamma) / (res2 + 1e-12)
            done = abs(new_alpha / new_beta - t) / t < tol
            alpha, beta = new_alpha, new_beta
            if done:
                break
        m2, res2 = terms(x2, res_perp, alpha / beta)
        logdet = float(np.log(alpha + beta * sigma).sum()) + (d - len(sigma)) * np.log(alpha)
        evidence = (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - alpha / 2 * m2 - beta / 2 * res2
                    - logdet / 2 - n / 2 * np.log(2 * np.pi))
        scores.append(evidence / n)
    return float(np.mean(scores))


def probe_accuracy(features: torch.Tensor, labels: torch.Tensor, num_classes: int, seed: int = 0, folds: int = 5) -> float:
    """Cross-validated accuracy of logistic regression (C=1) on standardised features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = labels.numpy()
    counts = np.bincount(y, minlength=num_classes)
    k = int(min(folds, counts[counts > 0].min()))
    if k < 2:
        return float("nan")
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000))
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return float(cross_val_score(clf, features.double().numpy(), y, cv=cv).mean())


def centroid_accuracy(features: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """Leave-one-out accuracy of the nearest class mean in cosine geometry.

    ``z_i = (phi_i - mean) / |phi_i - mean|``; image i is scored against every class mean
    ``m_c = S_c / n_c`` (``S_c`` the sum of class c's z), its own class's mean recomputed
    without it: ``(S_c - z_i) / (n_c - 1)``. Needs no fitting, so it stays reliable with a
    handful of images per class, where a cross-validated logistic regression does not (docs/transfer.md).
    """
    z = torch.nn.functional.normalize(features.double() - features.double().mean(0), dim=1)
    onehot = torch.nn.functional.one_hot(labels, num_classes).double()   # (N, K)
    sums = onehot.T @ z                                                   # (K, D)
    counts = onehot.sum(0)                                                # (K,)
    dots = z @ sums.T                                                     # (N, K): z_i . S_c
    self_dot = (z * z).sum(1)
    scores = dots / counts.clamp_min(1)
    n_own = counts[labels] - 1
    own_score = (dots[torch.arange(len(z)), labels] - self_dot) / n_own.clamp_min(1)
    scores[torch.arange(len(z)), labels] = torch.where(n_own > 0, own_score, torch.full_like(own_score, -float("inf")))
    scores[:, counts == 0] = -float("inf")
    return float((scores.argmax(1) == labels).double().mean())


def decide(features: torch.Tensor, labels: torch.Tensor, num_classes: int, n_stages: int, seed: int = 0,
           large_per_class: int = TransferConfig.large_per_class,
           similar_threshold: float = TransferConfig.similar_threshold, max_probe: int = 5000) -> AutoDecision:
    """Choose the strategy from the training split's frozen features (N, D) and labels (N,)."""
    counts = torch.bincount(labels, minlength=num_classes).float()
    median = float(counts[counts > 0].median())
    size = "large" if median >= large_per_class else "small"
    n_train = int(len(labels))
    if len(labels) > max_probe:  # the probe needs an estimate, not every image: a seeded subset
        idx = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:max_probe]
        features, labels = features[idx], labels[idx]
    chance = 1.0 / num_classes
    logreg_acc = probe_accuracy(features, labels, num_classes, seed)
    ncm_acc = centroid_accuracy(features, labels, num_classes)
    acc = max(a for a in (logreg_acc, ncm_acc) if a == a)  # separability is at least what the better probe shows
    score = (acc - chance) / (1 - chance) if acc == acc else 0.0
    lm = logme(features, labels, num_classes)
    similarity = "similar" if score >= similar_threshold else "dissimilar"
    strategy, unfreeze, augment, reason = CASES[(size, similarity)]
    if unfreeze == "half":
        unfreeze = max(1, (n_stages + 1) // 2)
    return AutoDecision(strategy, unfreeze, augment, size, similarity, reason, n_train, median, acc, score, chance, lm,
                        large_per_class, similar_threshold, logreg_acc, ncm_acc)
