"""Plots (matplotlib) and self-contained HTML reports shared by every verb."""
from .html import Report
from .plots import plot_compare_curves, plot_confusion_matrix, plot_curves, plot_per_class_accuracy, plot_prediction_grid

__all__ = ["Report", "plot_confusion_matrix", "plot_curves", "plot_per_class_accuracy", "plot_prediction_grid", "plot_compare_curves"]
