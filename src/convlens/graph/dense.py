"""One graph convolution written straight from the formula, for teaching (docs/graph.md,
"The maths, with shapes"):

    H' = σ(Â H W + b)        Â (N, N) = D̃^-1/2 (A + I) D̃^-1/2,  H (N, F_in),  W (F_in, F_out),
                             b (F_out,),  H' (N, F_out)

Dense Â costs O(N² F_out); PyG's ``GCNConv`` computes the same along the E edges in O(E F_out).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn


class DenseGCNLayer(nn.Module):
    """H' = activation(Â H W + b) with a dense Â given at call time."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 activation: Callable[[torch.Tensor], torch.Tensor] | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))  # W: (F_in, F_out)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.activation = activation
        nn.init.xavier_uniform_(self.weight)  # Glorot, as in Kipf & Welling and GCNConv

    def forward(self, h: torch.Tensor, a_hat: torch.Tensor) -> torch.Tensor:
        """h (N, F_in), a_hat (N, N) -> (N, F_out)."""
        out = a_hat @ (h @ self.weight)  # (N,N) @ ((N,F_in) @ (F_in,F_out)): multiply the thin side first
        if self.bias is not None:
            out = out + self.bias
        return self.activation(out) if self.activation is not None else out

    @torch.no_grad()
    def copy_from_gcnconv(self, conv: nn.Module) -> "DenseGCNLayer":
        """Take PyG ``GCNConv``'s weights (its ``lin.weight`` is (F_out, F_in), i.e. W transposed)."""
        self.weight.copy_(conv.lin.weight.t())
        if self.bias is not None:
            self.bias.copy_(conv.bias if conv.bias is not None else torch.zeros_like(self.bias))
        return self
