"""convlens: the ideas of a classic chapter on convolutional networks, on real data.

Sub-packages, one per idea of the chapter, over a small shared core:

==================  =========================================================
``convlens.data``     data sets held as tensors (Fashion-MNIST IDX, image folders)
``convlens.models``   the model registry (``create_model``, ``list_models``)
``convlens.engine``   training (Lightning), evaluation of every checkpoint
``convlens.reports``  plots and self-contained HTML reports
``convlens.runs``     run folders: config, metrics, checkpoints, atomic writes
``convlens.shapes``   output sizes, parameter/FLOP tables, convolution demos
``convlens.transfer`` pretrained backbones, feature extraction, fine-tuning
``convlens.explain``  feature maps, filters, class activation maps
``convlens.graph``    graph convolutional networks
==================  =========================================================
"""
from __future__ import annotations

from ._lazy import lazy_exports

__version__ = "0.1.0"

# imported lazily: `import convlens` stays fast and a notebook pays only for what it uses
_LAZY = {
    "ConvlensError": "convlens.errors",
    "create_model": "convlens.models", "list_models": "convlens.models", "register_model": "convlens.models",
    "load_dataset": "convlens.data", "list_datasets": "convlens.data",
    "TrainConfig": "convlens.engine", "train": "convlens.engine", "compare": "convlens.engine", "evaluate_run": "convlens.engine",
    "RunDir": "convlens.runs",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
