"""Output sizes, layer tables, parameter/FLOP counts and the chapter's convolution demos (issue 3).

>>> from convlens.shapes import model_table, conv_layer, alexnet_tables, run_demo
>>> t = model_table("tv/resnet18")          # or a convlens/timm name, a run folder, an nn.Module
>>> t.totals["params"], t.rows[0]["output_shape"], t.to_records()   # plain dicts (t.to_pandas() if pandas)
>>> conv_layer((32, 32, 3), filters=3, kernel=5, stride=1, padding=2)["output"]   # (32, 32, 3)

Names are imported lazily: ``convlens --help`` and argument errors must not pay for torch.
"""
from __future__ import annotations

from .._lazy import lazy_exports


_WHERE = {
    "ChapterAlexNet": "alexnet", "alexnet_tables": "alexnet",
    "plot_demo": "demos", "run_demo": "demos",
    "conv_layer": "formula", "layer_output_shape": "formula", "output_size": "formula", "pool_layer": "formula",
    "LayerTable": "table", "as_dataframe": "table", "cross_check": "table", "layer_table": "table",
    "load_model": "table", "model_table": "table",
}
__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
