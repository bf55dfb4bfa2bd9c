"""Output sizes, layer tables, parameter/FLOP counts and the chapter's convolution demos (issue 3)."""
from .formula import conv_layer, layer_output_shape, output_size, pool_layer
from .table import LayerTable, cross_check, layer_table, model_table

__all__ = ["LayerTable", "conv_layer", "cross_check", "layer_output_shape", "layer_table", "model_table",
           "output_size", "pool_layer"]
