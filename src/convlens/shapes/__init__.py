"""Output sizes, layer tables, parameter/FLOP counts and the chapter's convolution demos (issue 3).

>>> from convlens.shapes import model_table, conv_layer, alexnet_tables, run_demo
>>> t = model_table("tv/resnet18")          # or a convlens/timm name, a run folder, an nn.Module
>>> t.totals["params"], t.rows[0]["output_shape"], t.to_records()   # plain dicts (t.to_pandas() if pandas)
>>> conv_layer((32, 32, 3), filters=3, kernel=5, stride=1, padding=2)["output"]   # (32, 32, 3)
"""
from .alexnet import ChapterAlexNet, alexnet_tables
from .demos import plot_demo, run_demo
from .formula import conv_layer, layer_output_shape, output_size, pool_layer
from .table import LayerTable, as_dataframe, cross_check, layer_table, load_model, model_table

__all__ = ["ChapterAlexNet", "LayerTable", "alexnet_tables", "as_dataframe", "conv_layer", "cross_check",
           "layer_output_shape", "layer_table", "load_model", "model_table", "output_size", "plot_demo",
           "pool_layer", "run_demo"]
