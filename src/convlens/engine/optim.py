"""The one optimizer factory (the engine and the feature-extraction head both build theirs here)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ConvlensError

if TYPE_CHECKING:
    import torch
    from torch import nn

OPTIMIZERS = ("adam", "adamw", "sgd")


def make_optimizer(name: str, params: Any, lr: float, weight_decay: float = 0.0, momentum: float = 0.9,
                   nesterov: bool | None = None, **kwargs: Any) -> "torch.optim.Optimizer":
    """``adam``, ``adamw`` or ``sgd`` (heavy-ball momentum with Nesterov's look-ahead:
    v <- m v + g; w <- w - lr (g + m v); ``nesterov`` defaults to ``momentum > 0``).
    ``kwargs`` go to torch (e.g. ``fused=True``)."""
    import torch  # here, not at the top: the CLI reads OPTIMIZERS while parsing, before torch is imported

    name = name.lower()
    if name == "sgd":
        nesterov = momentum > 0 if nesterov is None else nesterov
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov, **kwargs)
    if name in ("adam", "adamw"):
        return (torch.optim.AdamW if name == "adamw" else torch.optim.Adam)(params, lr=lr, weight_decay=weight_decay, **kwargs)
    raise ConvlensError(f"--optimizer {name!r}: use {', '.join(OPTIMIZERS)}")


def fast_optimizer_kwargs(model: "nn.Module") -> dict[str, bool]:
    """``fused=True`` when every parameter is a float tensor on CPU or CUDA, else ``foreach``. On CPU
    torch's default is the per-tensor loop (``_single_tensor_adam``): for the chapter's DNN that was
    1.5 of its 3.4 ms step. The fused kernel does the same update in one pass."""
    params = list(model.parameters())
    fused = bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return {"fused": True} if fused else {"foreach": True}


def per_step(opt: "torch.optim.Optimizer", sched: Any) -> dict[str, Any]:
    """Lightning's ``configure_optimizers`` value for a schedule stepped every optimizer step."""
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
