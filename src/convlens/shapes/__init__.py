"""Output sizes, layer tables, parameter/FLOP counts and the chapter's convolution demos (issue 3;
usage: docs/shapes.md). Names are imported lazily: ``convlens --help`` and argument errors must
not pay for torch.
"""
from __future__ import annotations

from .._lazy import lazy_exports


_WHERE = {
    "ChapterAlexNet": "alexnet", "alexnet_tables": "alexnet",
    "plot_demo": "demos", "run_demo": "demos",
    "conv_layer": "formula", "layer_output_shape": "formula", "output_size": "formula", "pool_layer": "formula",
    "LayerTable": "table", "as_dataframe": "table", "cross_check": "table", "layer_table": "table", "model_table": "table",
}
__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
