"""One image, fully explained, in one pass: prediction, CAM(s) and feature maps by stage.

The feature maps are captured during the CAM's own forward pass and the backward pass starts at
the CAM target layer (docs/explain.md, "Why it is fast"); tested equal to the separate passes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from .base import Explainable, PreparedImage, prepare_image
from .cam import CamResult, cam_result, plot_cam
from .feature_maps import FeatureMaps, from_activations, plot_feature_maps
from .layers import resolve_layers, resolve_target_layer


@dataclass
class Explanation:
    """Everything about one image: ``cam`` (prediction, probabilities, heat maps) and
    ``feature_maps`` (one :class:`FeatureMaps` per chosen layer)."""

    cam: CamResult
    feature_maps: list[FeatureMaps]
    model_name: str = ""

    @property
    def image(self) -> PreparedImage:
        return self.cam.image

    def figures(self, k: int = 16) -> dict[str, Any]:
        """``{"cam": Figure, "feature_maps": Figure}`` (matplotlib; show them in a notebook)."""
        from ..i18n import t

        return {"cam": plot_cam(self.cam, title=f"{self.model_name}: {self.cam.method} at {self.cam.layer}"),
                "feature_maps": plot_feature_maps(self.feature_maps, k=k, title=f"{self.model_name}: {t('feature_maps_low_high')}")}


def explain_image(ex: Explainable, image: Any, method: str = "gradcam", cam_layer: str | int | None = None,
                  layers: Sequence[str | int] | None = None, classes: Sequence[str | int] = ()) -> Explanation:
    """Predict, map the predicted class (and ``classes``) with ``method`` at ``cam_layer``
    (default: the last feature map), and capture ``layers`` (default: low / mid / high stage),
    in one pass."""
    img = prepare_image(image, ex)
    target = resolve_target_layer(ex.model, ex.input_size, cam_layer)
    names = resolve_layers(ex.model, ex.input_size, layers)
    cam, acts = cam_result(ex, img, target, classes, method, capture=names)
    return Explanation(cam, from_activations(acts, names), ex.name)
