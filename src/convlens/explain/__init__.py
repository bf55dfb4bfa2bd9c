"""Explainable CNNs: feature maps, filters and class activation maps, with sanity checks.

One concern per file over a small base, in pytorch-grad-cam's style:

=================  ============================================================================
``base``           :class:`Explainable` (model + its preprocessing + classes), ``load_model``, ``prepare_image``
``hooks``          ``capture_activations`` (hooks removed even on error), ``gradients_start_at``, ``count_hooks``
``layers``         layer tracing, stages (low -> high), the CAM target layer, ``--layers``
``feature_maps``   feature-map grids, channels ranked by activation strength
``filters``        first-layer kernels as RGB tiles, deeper ones per channel
``cam``            CAMs through pytorch-grad-cam (gradcam, gradcam++, scorecam, eigencam, ...)
``pipeline``       ``explain_image``: prediction + CAM + feature maps in one pass
``report``         one HTML page per image; the N most confidently wrong test images of a run
``sanity``         Adebayo et al. (2018) model-randomisation check
=================  ============================================================================

Usage from the shell and from Python: docs/explain.md.
"""
from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "Explainable": "base", "PreparedImage": "base", "from_module": "base", "load_model": "base",
    "prepare_image": "base", "resolve_class": "base",
    "capture_activations": "hooks", "count_hooks": "hooks", "gradients_start_at": "hooks",
    "LayerInfo": "layers", "trace_layers": "layers", "stage_layers": "layers", "default_feature_layers": "layers",
    "cam_target_layer": "layers", "resolve_layers": "layers", "conv_layers": "layers",
    "FeatureMaps": "feature_maps", "compute_feature_maps": "feature_maps", "rank_channels": "feature_maps",
    "plot_feature_maps": "feature_maps",
    "Filters": "filters", "get_filters": "filters", "plot_filters": "filters", "default_filter_layers": "filters",
    "METHODS": "cam", "CamResult": "cam", "ClassCam": "cam", "compute_cam": "cam", "plot_cam": "cam", "overlay": "cam",
    "Explanation": "pipeline", "explain_image": "pipeline",
    "write_reports": "report", "report_wrong": "report", "most_confidently_wrong": "report",
    "SanityResult": "sanity", "model_randomization_check": "sanity", "randomized_copy": "sanity",
    "cam_similarity": "sanity", "plot_sanity": "sanity",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
