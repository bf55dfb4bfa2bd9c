"""``TrainConfig.compile`` (``--compile``): the training forward, and through AOTAutograd its
backward, compiled by TorchInductor.

The idea: in an fp32 CNN step on CPU much of the time is memory-bound elementwise work
(BatchNorm statistics and normalisation, ReLU, max-pool and their backwards) that eager
PyTorch runs as one kernel each; Inductor fuses those into a few C++/OpenMP loops and keeps
convolutions and matmuls in oneDNN/MKL. Measured on the project's 2-core machine under the
AVX2 cap it did **not** pay for the chapter CNN (0.83-1.05x of eager per step, plus 25-35 s
of compilation), so it is off by default; docs/speed.md has the figures and commands.

What compile changes, honestly:

* **rounding**: fused kernels sum in another order, so losses differ from eager in the last
  bits and drift apart over an epoch like any two valid float orders. A compiled run is
  reproducible against itself (same seed, machine and torch), not bit-equal to an eager run;
  the engine's bit-for-bit determinism tests run eager.
* **dropout**: Inductor draws its own random numbers (seeded from torch's generator), so the
  masks differ from eager's.
* **start-up**: the first step of each input shape compiles (25-35 s on 2 cores here); a
  short last batch compiles once more. Torch caches compiled code on disk.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def compiled_forward(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``torch.compile(model)`` with static shapes: the engine feeds one batch size (plus
    possibly a short last batch), so a specialised graph per shape beats a dynamic one."""
    return torch.compile(model, dynamic=False)


__all__ = ["compiled_forward"]
