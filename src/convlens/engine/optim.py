"""The one optimizer factory (the engine and the feature-extraction head both build theirs here)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ConvlensError

if TYPE_CHECKING:
    import torch

OPTIMIZERS = ("adam", "adamw", "sgd")


def make_optimizer(name: str, params: Any, lr: float, weight_decay: float = 0.0, momentum: float = 0.9,
                   **kwargs: Any) -> "torch.optim.Optimizer":
    """``adam``, ``adamw`` or ``sgd`` (heavy-ball momentum with Nesterov's look-ahead:
    v <- m v + g; w <- w - lr (g + m v)). ``kwargs`` go to torch (e.g. ``fused=True``)."""
    import torch  # here, not at the top: the CLI reads OPTIMIZERS while parsing, before torch is imported

    name = name.lower()
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=momentum > 0, **kwargs)
    if name in ("adam", "adamw"):
        cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
        return cls(params, lr=lr, weight_decay=weight_decay, **kwargs)
    raise ConvlensError(f"--optimizer {name!r}: use {', '.join(OPTIMIZERS)}")
