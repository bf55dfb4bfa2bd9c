"""The model registry: ``create_model(name)``, ``list_models()``, ``register_model``."""
from .registry import create_model, describe_models, is_model, list_models, register_model

__all__ = ["create_model", "describe_models", "is_model", "list_models", "register_model"]
