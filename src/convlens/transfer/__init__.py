"""Transfer learning: pretrained backbones, cached frozen features, fine-tuning, ``auto``.

>>> from convlens.transfer import TransferConfig, transfer, predict
>>> res = transfer(TransferConfig(data="../shared/data/catanddog", strategy="feature-extract"))
>>> predict(res.run.path, ["cat.jpg"])[0].top(2)

Names are imported lazily (PEP 562) so ``convlens --help`` does not pay for torch and timm.
"""
from __future__ import annotations

from .._lazy import lazy_exports


_EXPORTS = {
    "AutoDecision": "auto", "decide": "auto", "logme": "auto", "probe_accuracy": "auto",
    "Backbone": "backbones", "load_backbone": "backbones", "model_stages": "backbones", "resolve_unfreeze": "backbones",
    "FeatureSet": "features", "extract_features": "features", "pooled_features": "features",
    "fit_logreg_head": "heads", "train_linear_head": "heads",
    "Prediction": "convlens.engine.prediction", "format_predictions": "convlens.engine.prediction", "predict": "convlens.engine.prediction",
    "TransferConfig": "config", "TransferResult": "config", "param_groups_fn": "fine_tune", "prepare_fine_tune": "fine_tune",
    "transfer": "run",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
