"""The degradation problem (He et al. 2016, Figures 1 and 6), read off a ``compare`` run.

A deeper *plain* network trains to a *higher training error* than a shallower one, so the
problem is optimisation, not overfitting; the same depth with identity shortcuts does not
degrade. :func:`training_error_figure` draws training error per epoch (thin: plain, thick:
residual, as the paper does); :func:`degradation_verdict` states, on the last epochs, whether
the deeper plain net is worse than the shallower one and the deeper ResNet at least as good.
``--budget IMAGESxEPOCHS`` makes the experiment fit a CPU; with ``--model-kwargs zero_init_residual=true``
both halves show at ``5000x20`` in 9 CPU minutes (docs/resnet.md: why, and the smallest budget found).
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..errors import ConvlensError


def parse_budget(text: str) -> tuple[int, int]:
    """``"5000x8"`` -> (5000 training images, 8 epochs)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text or "")
    if not m or int(m.group(1)) < 100 or int(m.group(2)) < 1:
        raise ConvlensError(f"--budget {text!r}: write IMAGESxEPOCHS with at least 100 images, e.g. 5000x8")
    return int(m.group(1)), int(m.group(2))


def _depth(name: str) -> int | None:
    m = re.search(r"(\d+)$", name)
    return int(m.group(1)) if m else None


def final_training_error(history: Sequence[dict[str, Any]], last: int = 2) -> float:
    """Mean training error (1 - train accuracy, measured on the fly) over the ``last`` epochs."""
    rows = [r for r in history if r.get("train_acc") is not None][-last:]
    return sum(1 - r["train_acc"] for r in rows) / len(rows)


def degradation_verdict(histories: dict[str, Sequence[dict[str, Any]]]) -> list[str]:
    """One sentence per family (``plain``, ``resnet``) with at least two depths."""
    out = []
    for family, should_degrade in (("plain", True), ("resnet", False)):
        nets = sorted(((d, n) for n in histories if n.startswith(family) and (d := _depth(n))), key=lambda t: t[0])
        if len(nets) < 2:
            continue
        shallow, deep = nets[0][1], nets[-1][1]
        e0, e1 = final_training_error(histories[shallow]), final_training_error(histories[deep])
        if should_degrade:
            seen = "degrades: the deeper plain net trains worse" if e1 > e0 else "no degradation seen at this budget"
        else:
            seen = "no degradation: the deeper ResNet trains at least as well" if e1 <= e0 else "the deeper ResNet trains worse at this budget"
        out.append(f"{deep} training error {e1:.1%} vs {shallow} {e0:.1%} (mean of the last 2 epochs): {seen}")
    return out


def training_error_figure(histories: dict[str, Sequence[dict[str, Any]]], title: str = "") -> Any:
    """Training error (%) per epoch, one line per model: plain nets dashed, ResNets solid."""
    from ..reports.plots import epoch_axes, finish, plt  # the shared backend set-up: a notebook's inline backend survives

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, hist in histories.items():
        rows = [r for r in hist if r.get("train_acc") is not None]
        style = "--" if name.startswith("plain") else "-"
        ax.plot([r["epoch"] for r in rows], [100 * (1 - r["train_acc"]) for r in rows], style, marker="o", markersize=3,
                label=name, linewidth=1.2 if name.startswith("plain") else 2.2)
    epoch_axes(ax, "training error (%)", xlabel="epoch")
    ax.set_title(title or "training error per epoch (He et al. Fig. 1/6: deeper plain nets train worse)")
    return finish(fig)
