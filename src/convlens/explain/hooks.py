"""Forward hooks that never outlive their use: each is registered inside a context manager and
removed in its ``finally``, whether the block finished or raised. A forgotten hook keeps every
activation it saw alive (how "explain 1,000 images" runs out of memory); :func:`count_hooks`
lets tests check it.
"""
from __future__ import annotations

from contextlib import contextmanager
from functools import partial
from typing import Callable, Iterable, Iterator, Sequence

import torch
import torch.nn as nn

from ..errors import ConvlensError


def named_module(model: nn.Module, name: str) -> nn.Module:
    """``model.get_submodule(name)`` with a one-line error."""
    try:
        return model.get_submodule(name) if name else model
    except AttributeError:
        raise ConvlensError(f"layer {name!r} is not a module of {type(model).__name__}; see `convlens explain layers`") from None


def count_hooks(model: nn.Module) -> int:
    """Number of forward/backward (pre-)hooks on ``model`` and all its sub-modules."""
    return sum(len(getattr(m, attr, {}) or {}) for m in model.modules()
               for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"))


@contextmanager
def capture_activations(model: nn.Module, layers: Sequence[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Record the output of named layers during the forward passes run inside the block.

    Yields a dict ``{name: tensor}`` filled by the forward pass (the last call wins if a
    module runs twice). Tensors are detached, and cloned because an in-place op after the
    layer (``ReLU(inplace=True)``, ``out += identity``) would otherwise change what was
    recorded. Shapes are the layers' outputs, e.g. (B, C, H, W).
    """
    store: dict[str, torch.Tensor] = {}

    def hook(_m: nn.Module, _inp: object, out: object, name: str) -> None:
        t = out[0] if isinstance(out, (tuple, list)) else out
        if isinstance(t, torch.Tensor):
            store[name] = t.detach().clone()

    with forward_hooks((named_module(model, name), partial(hook, name=name)) for name in layers):
        yield store


@contextmanager
def forward_hooks(hooks: Iterable[tuple[nn.Module, Callable[..., object]]], prepend: bool = False) -> Iterator[None]:
    """The one way convlens hooks a model: ``(module, hook)`` forward hooks registered for the
    block and removed when it ends, whether it finished or raised."""
    handles = []
    try:
        for module, fn in hooks:
            handles.append(module.register_forward_hook(fn, prepend=prepend))
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def gradients_start_at(model: nn.Module, layer: nn.Module) -> Iterator[None]:
    """Make autograd start at ``layer``'s output for the forward passes inside the block.

    Grad-CAM needs only ∂y_c/∂A for the target layer's output A. The parameters are frozen
    (restored on exit) and a prepended forward hook replaces A by ``A.detach().requires_grad_() + 0``
    (``+ 0`` so an in-place op after the layer still works): the graph then holds only the layers
    above A, and ∂y_c/∂A is unchanged (docs/explain.md, "Why it is fast").
    """
    flags = [(p, p.requires_grad) for p in model.parameters()]

    def hook(_m: nn.Module, _inp: object, out: object) -> object:
        if isinstance(out, torch.Tensor) and torch.is_grad_enabled():
            return out.detach().requires_grad_(True) + 0
        return None

    try:
        for p, _ in flags:
            p.requires_grad_(False)
        with forward_hooks([(layer, hook)], prepend=True):
            yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
