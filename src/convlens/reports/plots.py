"""Figures people would rather look at than read. Every function returns a matplotlib
``Figure`` (save it with ``RunDir.save_figure`` or show it in a notebook)."""
from __future__ import annotations

from typing import Any, Sequence

from matplotlib.ticker import MaxNLocator

from ..figures import headless_backend, use_cjk_font
from ..i18n import t

headless_backend()  # off-screen by default; a notebook's inline backend is kept
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def finish(fig: "plt.Figure", title: str = "") -> "plt.Figure":
    """``title`` over the whole figure, then a tight layout: how every figure of convlens ends."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def epoch_axes(ax: Any, ylabel: str, integer: bool = True, xlabel: str | None = None) -> None:
    """Label an axes whose x is the epoch (whole numbers only when ``integer``), with a light grid and the legend."""
    if integer:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel or t("epoch"))
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()


def plot_curves(history: Sequence[dict[str, Any]], title: str = "") -> "plt.Figure":
    """Loss and accuracy per epoch, train / val / test on one figure each.

    ``history`` rows look like ``{"epoch": 1, "train_loss": .., "train_acc": .., "test_acc": ..}``;
    epochs are drawn as recorded (run folders count them from 1).
    """
    use_cjk_font([title])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    epochs = [r["epoch"] for r in history]
    for ax, metric in zip(axes, ("loss", "acc")):
        for split, style in (("train", "-o"), ("val", "--s"), ("test", "-^")):
            key = f"{split}_{metric}"
            if pts := [(e, r[key]) for e, r in zip(epochs, history) if r.get(key) is not None]:
                ax.plot(*zip(*pts), style, label=t(split), markersize=4)
        epoch_axes(ax, t("accuracy") if metric == "acc" else t("loss"), integer=False)
        if epochs:
            ax.set_xticks(epochs if len(epochs) <= 20 else epochs[:: max(1, len(epochs) // 10)])
    return finish(fig, title)


def plot_compare_curves(histories: dict[str, Sequence[dict[str, Any]]], title: str = "") -> "plt.Figure":
    """Several runs' test accuracy and train loss overlaid (``{label: history}``)."""
    use_cjk_font([title, *histories])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for label, hist in histories.items():
        ep = [r["epoch"] for r in hist]
        axes[0].plot(ep, [r.get("train_loss") for r in hist], "-o", label=f"{label} {t('train')}", markersize=3)
        acc_key = "test_acc" if any(r.get("test_acc") is not None for r in hist) else "val_acc"
        axes[1].plot(ep, [r.get(acc_key) for r in hist], "-o", label=f"{label} {t(acc_key.split('_')[0])}", markersize=3)
    for ax, ylabel in zip(axes, (t("train_loss"), t("accuracy"))):
        epoch_axes(ax, ylabel)
    return finish(fig, title)


def plot_confusion_matrix(cm: Any, class_names: Sequence[str], normalize: bool = True, title: str = "") -> "plt.Figure":
    """Rows are true classes, columns predictions; cells show counts (colour = row share)."""
    use_cjk_font([title, *class_names])
    cm = np.asarray(cm, dtype=np.int64)
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    n = len(class_names)
    size = max(4.0, 0.55 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    im = ax.imshow(share if normalize else cm, cmap="Blues", vmin=0)
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel(t("predicted"))
    ax.set_ylabel(t("true"))
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if share[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=t("share_of_true_class") if normalize else t("count"))
    ax.set_title(title or t("confusion_matrix"))
    return finish(fig)


def plot_per_class_accuracy(cm: Any, class_names: Sequence[str], title: str = "") -> "plt.Figure":
    use_cjk_font([title, *class_names])
    cm = np.asarray(cm, dtype=np.int64)
    acc = np.diag(cm) / np.maximum(cm.sum(axis=1), 1)
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(class_names) + 2), 3.5))
    bars = ax.bar(range(len(class_names)), acc, color=["#c0392b" if a < acc.mean() else "#2e86c1" for a in acc])
    ax.bar_label(bars, labels=[f"{a:.0%}" for a in acc], fontsize=8)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_ylim(0, 1.08)
    ax.axhline(acc.mean(), color="gray", ls="--", lw=1, label=t("mean_value", value=f"{acc.mean():.1%}"))
    ax.set_ylabel(t("accuracy"))
    ax.legend(loc="lower right")
    ax.set_title(title or t("per_class_accuracy"))
    return finish(fig)


def to_displayable(images: Any, mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> np.ndarray:
    """(N,C,H,W) normalised tensor/array -> (N,H,W,C) or (N,H,W) floats in [0,1].

    Undoes the *actual* normalisation (the chapter's ``im_convert`` always used 0.5/0.5)."""
    x = images.detach().cpu().float().numpy() if hasattr(images, "detach") else np.asarray(images, dtype=np.float32)
    if mean is not None and std is not None:
        m = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
        s = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
        x = x * s + m
    x = np.clip(x, 0, 1).transpose(0, 2, 3, 1)
    return x[..., 0] if x.shape[-1] == 1 else x


def plot_prediction_grid(images: Any, preds: Sequence[int], targets: Sequence[int], class_names: Sequence[str],
                         mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                         ncols: int = 10, title: str = "", probs: Sequence[float] | None = None) -> "plt.Figure":
    """The chapter's grid: each image titled ``pred(true)``, green when right, red when wrong."""
    use_cjk_font([title, *class_names])
    imgs = to_displayable(images, mean, std)
    n = len(imgs)
    ncols = min(ncols, n) or 1
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.9 * nrows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        ax.imshow(imgs[k], cmap="gray" if imgs[k].ndim == 2 else None)
        label = f"{class_names[int(preds[k])]}({class_names[int(targets[k])]})"
        if probs is not None:
            label += f"\n{probs[k]:.0%}"
        ax.set_title(label, fontsize=7, color="green" if int(preds[k]) == int(targets[k]) else "red")
    return finish(fig, title)
