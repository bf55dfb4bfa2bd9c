"""Class activation maps through the maintained library pytorch-grad-cam (``pytorch_grad_cam``).

Grad-CAM (Selvaraju et al. 2017), for class c and target-layer output A (K, u, v):

    α_k^c = (1 / uv) Σ_ij ∂y_c / ∂A_kij          (y_c: the class's logit)
    L^c   = ReLU( Σ_k α_k^c A_k )                 (u, v), upsampled to the input (H, W), scaled to [0, 1]

Grad-CAM++ weights the gradients by higher-order terms, LayerCAM uses ReLU(∂y_c/∂A) A pixel
by pixel, Score-CAM weights A_k by the class score of the input masked by A_k (one forward
pass per channel: slow), Eigen-CAM takes A's first principal component (class-agnostic).
convlens only chooses the layer, the targets and the preprocessing; the maps are the library's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import ConvlensError
from .base import Explainable, PreparedImage, prepare_image
from .hooks import capture_activations, gradients_start_at, named_module
from .layers import resolve_target_layer

# our name -> pytorch_grad_cam class
METHODS: dict[str, str] = {"gradcam": "GradCAM", "gradcam++": "GradCAMPlusPlus", "hirescam": "HiResCAM", "xgradcam": "XGradCAM",
                           "layercam": "LayerCAM", "eigencam": "EigenCAM", "eigengradcam": "EigenGradCAM",
                           "gradcamelementwise": "GradCAMElementWise", "scorecam": "ScoreCAM", "ablationcam": "AblationCAM"}
GRADIENT_FREE = {"scorecam", "eigencam", "ablationcam"}
_ALIASES = {"gradcampp": "gradcam++", "grad-cam": "gradcam", "grad-cam++": "gradcam++", "score-cam": "scorecam",
            "layer-cam": "layercam", "eigen-cam": "eigencam"}


@dataclass
class PredictedClass:
    """A pytorch-grad-cam target: the logit of the class the model predicts for this sample."""

    index: int | None = None

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        if self.index is None:  # the first call sees the unmasked image's output
            self.index = int(output.argmax(-1))
        return output[..., self.index]


@dataclass
class ClassCam:
    """One class's map: ``heatmap`` (H, W) float32 in [0, 1] at the input's resolution."""

    class_index: int
    class_name: str
    prob: float
    heatmap: np.ndarray
    predicted: bool = False


@dataclass
class CamResult:
    """CAMs of one image: ``probs`` (num_classes,) softmax; ``cams[0]`` is the predicted class."""

    method: str
    layer: str
    probs: np.ndarray
    cams: list[ClassCam]
    image: PreparedImage
    classes: list[str] | None = None

    @property
    def pred(self) -> int:
        return int(np.argmax(self.probs))

    def topk(self, k: int = 5) -> list[tuple[int, float]]:
        return [(int(i), float(self.probs[i])) for i in np.argsort(-self.probs, kind="stable")[:k]]


def compute_cam(ex: Explainable, image: Any, method: str = "gradcam", layer: str | int | None = None,
                classes: Sequence[str | int] = ()) -> CamResult:
    """CAMs of the predicted class and of ``classes`` (names or indices) for one image."""
    return cam_result(ex, prepare_image(image, ex), resolve_target_layer(ex.model, ex.input_size, layer), classes, method)[0]


def cam_result(ex: Explainable, img: PreparedImage, layer: str, classes: Sequence[str | int] = (), method: str = "gradcam",
               capture: Sequence[str] = ()) -> tuple[CamResult, dict[str, torch.Tensor]]:
    """The one pass behind every explanation.

    Runs the image once per target (the predicted class, then ``classes``, by name or index) as
    one batch through pytorch-grad-cam, recording ``capture`` layers on the way. Returns the
    :class:`CamResult` and the captured activations ``{name: (T, C, h, w)}`` (T targets).
    """
    key = _ALIASES.get(method.lower(), method.lower())
    if key not in METHODS:
        raise ConvlensError(f"--method {method!r}: unknown CAM method; choose one of {', '.join(METHODS)}")
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = ex.model.eval()
    module = named_module(model, layer)
    pred = PredictedClass()
    if key in GRADIENT_FREE:
        # these never evaluate the targets on the plain image (Score-CAM: only on masked
        # copies), so the prediction comes from one plain forward pass first
        with torch.no_grad():
            pred.index = int(model(img.x).argmax(-1)[0])

    chosen = [ex.class_index(c) for c in classes]
    targets: list[Any] = [pred] + [ClassifierOutputTarget(c) for c in chosen]
    with capture_activations(model, list(capture)) as acts, gradients_start_at(model, module):
        cam = getattr(pytorch_grad_cam, METHODS[key])(model=model, target_layers=[module])
        try:
            if hasattr(cam, "batch_size") or key in ("scorecam", "ablationcam"):
                cam.batch_size = 32
            heat = cam(input_tensor=img.x.expand(len(targets), *img.x.shape[1:]), targets=targets)
            logits = cam.outputs[0].detach().float().cpu()
        finally:
            # the library keeps the last outputs (and so the autograd graph) on the object
            cam.activations_and_grads.release()
            cam.outputs = None
    probs = logits.softmax(-1).numpy()
    heat = np.nan_to_num(np.asarray(heat, dtype=np.float32))
    cams = [ClassCam(c, ex.classes[c], float(probs[c]), heat[i], predicted=(i == 0)) for i, c in enumerate([pred.index, *chosen])]
    return CamResult(method, layer, probs, cams, img, ex.classes), acts


def overlay(display: np.ndarray, heatmap: np.ndarray, image_weight: float = 0.5) -> np.ndarray:
    """Heat map (jet) blended on the image: (H, W, 3) uint8 (pytorch-grad-cam's ``show_cam_on_image``)."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    rgb = np.repeat(display[..., None], 3, axis=-1) if display.ndim == 2 else display
    return show_cam_on_image(np.ascontiguousarray(rgb, dtype=np.float32), heatmap, use_rgb=True, image_weight=image_weight)


def plot_cam(result: CamResult, k: int = 5, title: str = "") -> "Any":
    """The image, one overlay per class (predicted first) titled with its probability, and the
    top-``k`` probabilities."""
    import matplotlib.pyplot as plt

    from ..figures import use_cjk_font
    from ..i18n import t

    use_cjk_font([title, *(result.classes or [])])  # a run's class names may be Korean
    disp = result.image.display()
    n = len(result.cams)
    fig, axes = plt.subplots(1, n + 2, figsize=(3.1 * (n + 2), 3.4),
                             gridspec_kw={"width_ratios": [1] * (n + 1) + [1.2]})
    axes[0].imshow(disp, cmap="gray" if disp.ndim == 2 else None, vmin=0, vmax=1)
    axes[0].set_title(result.image.name, fontsize=9)
    for ax, cc in zip(axes[1:], result.cams):
        ax.imshow(overlay(disp, cc.heatmap))
        ax.set_title(f"{t('predicted') if cc.predicted else 'class'}: {cc.class_name[:28]}\np = {cc.prob:.1%}", fontsize=9)
    for ax in axes[: n + 1]:
        ax.axis("off")
    top = result.topk(k)[::-1]  # barh draws bottom up: the most probable class on top
    ax = axes[-1]
    names = [result.classes[i].split(",")[0][:22] if result.classes else str(i) for i, _ in top]
    vals = [p for _, p in top]
    bars = ax.barh(range(len(top)), vals, color=["#c0392b" if i == result.pred else "#2e86c1" for i, _ in top])
    ax.set_yticks(range(len(top)), names, fontsize=8)
    ax.bar_label(bars, labels=[f"{v:.1%}" for v in vals], fontsize=7)
    ax.set_xlim(0, 1.15)
    ax.set_title(f"top-{len(top)} probabilities", fontsize=9)
    fig.suptitle(title or f"{result.method} at {result.layer}", fontsize=10)
    fig.tight_layout()
    return fig

