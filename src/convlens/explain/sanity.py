"""Sanity checks for saliency maps (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018).

Model-parameter randomisation test: a map that explains what the *trained* model learnt must
change when the weights are replaced by random ones. The trained and randomised maps M, M'
(H, W) are compared by Spearman's rank correlation ρ over pixels and by SSIM (both in [-1, 1],
1 = identical), averaged over ``n_seeds`` re-initialisations (on the chapter's cat, single seeds
gave ρ from -0.5 to 0.5); a method passes when both means are below ``threshold`` (0.5). The
*cascading* variant randomises from the classifier down, one block at a time (docs/explain.md).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from .base import Explainable, prepare_image
from .cam import cam_result, overlay
from .layers import resolve_target_layer


def randomized_copy(model: nn.Module, seed: int = 0, prefixes: Sequence[str] | None = None) -> nn.Module:
    """A deep copy of ``model`` with every module (or those named by ``prefixes``) re-initialised
    by its own initialiser, as at the start of training; the global RNG is left untouched.

    So BatchNorm goes back to identity affine and running statistics 0/1: random BN affine
    parameters (tried first) blow activations up or kill them, and the map degenerates to a
    padding artefact, a centred blob that correlates with any centred object."""
    rnd = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name, m in rnd.named_modules():
            if hasattr(m, "reset_parameters") and (prefixes is None or any(name == p or name.startswith(p + ".") for p in prefixes)):
                m.reset_parameters()
    return rnd.eval()


def cam_similarity(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Spearman ρ and SSIM between two maps (H, W) in [0, 1]."""
    from scipy.stats import spearmanr
    from torchmetrics.functional.image import structural_similarity_index_measure as ssim

    a, b = (np.asarray(m, dtype=np.float64) for m in (a, b))
    # a constant map carries no ranking at all
    rho = 0.0 if a.std() == 0 or b.std() == 0 else float(spearmanr(a.ravel(), b.ravel()).statistic)
    s = float(ssim(torch.tensor(a, dtype=torch.float32)[None, None], torch.tensor(b, dtype=torch.float32)[None, None], data_range=1.0))
    return {"spearman": rho, "ssim": s}


def randomization_groups(model: nn.Module) -> list[str]:
    """Blocks from the top (classifier) down: top-level children (looking through a wrapper
    with a single child, e.g. a torchvision model's ``net``), a block container (Sequential /
    ModuleList of 3 or more) split into its children; blocks without parameters are skipped."""
    prefix, root = "", model
    while len(list(root.children())) == 1:
        name, root = next(iter(root.named_children()))
        prefix += name + "."
    groups: list[str] = []
    for name, child in root.named_children():
        kids = list(child.named_children())
        if isinstance(child, (nn.Sequential, nn.ModuleList)) and len(kids) >= 3:
            groups += [f"{prefix}{name}.{k}" for k, _ in kids]
        else:
            groups.append(prefix + name)
    return [g for g in reversed(groups) if any(True for _ in model.get_submodule(g).parameters())]


@dataclass
class SanityResult:
    """Trained vs randomised map. ``cascade``: [(block randomised down to, ρ, SSIM)]."""

    method: str
    layer: str
    class_index: int
    trained: np.ndarray
    randomized: np.ndarray
    spearman: float
    ssim: float
    cascade: list[tuple[str, float, float]] = field(default_factory=list)
    threshold: float = 0.5
    per_seed: list[dict[str, float]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.spearman < self.threshold and self.ssim < self.threshold


def model_randomization_check(ex: Explainable, image: Any, method: str = "gradcam", layer: str | int | None = None,
                              seed: int = 0, cascading: bool = False, threshold: float = 0.5, n_seeds: int = 3) -> SanityResult:
    """Map the trained model's predicted class, then the same class with randomised weights
    (seeds ``seed .. seed + n_seeds - 1``); ``spearman``/``ssim`` are the means over seeds."""
    img = prepare_image(image, ex)
    lname = resolve_target_layer(ex.model, ex.input_size, layer)
    trained = cam_result(ex, img, lname, (), method)[0].cams[0]
    c = trained.class_index

    def random_map(prefixes: Sequence[str] | None, s: int = seed) -> np.ndarray:
        rnd = Explainable(randomized_copy(ex.model, s, prefixes), ex.preprocess, ex.mean, ex.std, ex.classes, ex.name)
        return cam_result(rnd, img, lname, [c], method)[0].cams[1].heatmap

    maps = [random_map(None, seed + i) for i in range(max(1, n_seeds))]
    per_seed = [cam_similarity(trained.heatmap, m) for m in maps]
    sim = {k: float(np.mean([p[k] for p in per_seed])) for k in ("spearman", "ssim")}
    cascade = []
    groups = randomization_groups(ex.model) if cascading else []
    for i in range(len(groups)):
        s = cam_similarity(trained.heatmap, random_map(groups[: i + 1]))
        cascade.append((groups[i], s["spearman"], s["ssim"]))
    return SanityResult(method, lname, c, trained.heatmap, maps[0], sim["spearman"], sim["ssim"], cascade, threshold, per_seed)


def plot_sanity(res: SanityResult, display: np.ndarray | None = None) -> Any:
    import matplotlib.pyplot as plt

    n = 3 if res.cascade else 2
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n + (1.5 if res.cascade else 0), 3.6))
    for ax, m, t in zip(axes, (res.trained, res.randomized), ("trained weights", "randomised weights (seed 0)")):
        ax.imshow(overlay(display, m) if display is not None else m, cmap=None if display is not None else "jet")
        ax.set_title(t, fontsize=9)
        ax.axis("off")
    if res.cascade:
        ax = axes[2]
        ax.plot(range(len(res.cascade)), [r for _, r, _ in res.cascade], "-o", label="Spearman ρ", ms=3)
        ax.plot(range(len(res.cascade)), [s for _, _, s in res.cascade], "-s", label="SSIM", ms=3)
        ax.set_xticks(range(len(res.cascade)), [g for g, _, _ in res.cascade], rotation=70, fontsize=6)
        ax.set_ylim(-0.2, 1.05)
        ax.axhline(res.threshold, color="gray", ls="--", lw=1)
        ax.set_title("cascading randomisation (top down)", fontsize=9)
        ax.legend(fontsize=7)
    verdict = "PASS" if res.passed else "FAIL"
    fig.suptitle(f"{res.method} at {res.layer}: mean over {len(res.per_seed)} random networks: Spearman ρ = {res.spearman:.2f}, SSIM = {res.ssim:.2f} -> {verdict}", fontsize=10)
    fig.tight_layout()
    return fig
