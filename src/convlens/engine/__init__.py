"""Training (Lightning), evaluation of every checkpoint, run reports.

Names are imported lazily: reading a checkpoint (``convlens.engine.load_run_model``) must not
pay for importing Lightning.
"""
from __future__ import annotations

from .._lazy import lazy_exports


_WHERE = {
    "load_run_model": "checkpoint", "model_meta": "checkpoint", "read_checkpoint": "checkpoint",
    "save_model_checkpoint": "checkpoint",
    "compare": "comparison",
    "TrainConfig": "config",
    "Evaluation": "evaluate", "evaluate_model": "evaluate", "evaluate_run": "evaluate",
    "ClassifierModule": "module", "freeze_bn_of_frozen_layers": "module",
    "BatchPreprocessor": "preprocess", "normalise": "preprocess",
    "Prediction": "prediction", "format_predictions": "prediction", "predict": "prediction",
    "prepare_data": "evaluate", "confusion_matrix": "evaluate",
    "TrainingInterrupted": "training", "TrainResult": "training", "train": "training",
}
__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
