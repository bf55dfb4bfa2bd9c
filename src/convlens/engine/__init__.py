"""Training (Lightning), evaluation of every checkpoint, run reports."""
from .checkpoint import load_run_model, model_meta, read_checkpoint, save_model_checkpoint
from .compare import compare
from .config import TrainConfig
from .evaluate import Evaluation, evaluate_model, evaluate_run
from .module import ClassifierModule, freeze_bn_of_frozen_layers
from .preprocess import BatchPreprocessor
from .train import TrainingInterrupted, TrainResult, prepare_data, train

__all__ = ["BatchPreprocessor", "ClassifierModule", "Evaluation", "TrainConfig", "TrainResult", "TrainingInterrupted",
           "compare", "evaluate_model", "evaluate_run", "freeze_bn_of_frozen_layers", "load_run_model", "model_meta",
           "prepare_data", "read_checkpoint", "save_model_checkpoint", "train"]
