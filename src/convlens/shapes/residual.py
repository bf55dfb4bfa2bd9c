"""Where a residual network adds its shortcuts, and where it pads or projects them.

A residual block outputs ``H(x) = F(x) + shortcut(x)``. The shortcut is the identity when
``F`` keeps the shape; where ``F`` halves the map and doubles the channels it must change
shape too: He et al.'s CIFAR nets subsample and zero-pad (option A, no parameters),
torchvision's ImageNet ResNets use a strided 1x1 convolution + BatchNorm (option B,
"projection"). A plain net has the same blocks with no shortcut at all.

:func:`residual_blocks` finds the blocks of any model by their shortcut attribute
(``shortcut`` in convlens, ``downsample`` in torchvision and timm) and records the shapes one
forward pass shows; :func:`print_residual_blocks` draws them under ``convlens shapes``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .table import measuring

_SHORTCUT_ATTRS = ("shortcut", "downsample")


def _shortcut_of(mod: nn.Module) -> tuple[bool, nn.Module | None, bool]:
    """(is a residual-style block, its shortcut module or None, is a plain block).

    torchvision's ``downsample=None`` means an identity shortcut; convlens' ``shortcut=None``
    means none at all (a plain block)."""
    for attr in _SHORTCUT_ATTRS:
        sc = getattr(mod, attr, False)
        if isinstance(sc, nn.Module):
            return True, sc, False
        if sc is None and any(True for _ in mod.children()):
            return True, None, attr == "shortcut"
    return False, None, False


def _describe(sc: nn.Module | None, plain: bool, cin: int, cout: int, stride: int) -> str:
    if plain:
        return "none (plain block: no addition)"
    if sc is None or isinstance(sc, nn.Identity):
        return "identity: adds x"
    params = sum(p.numel() for p in sc.parameters())
    if params == 0:
        return f"option A: x subsampled by {stride}, {cout - cin} zero channels padded ({cin}->{cout}), 0 parameters"
    convs = [m for m in sc.modules() if isinstance(m, nn.Conv2d)]
    k = "x".join(map(str, convs[0].kernel_size)) if convs else "?"
    return f"projection: {k} conv stride {stride} + BN ({cin}->{cout}), {params:,} parameters"


def residual_blocks(model: nn.Module, input_shape: Sequence[int]) -> list[dict[str, Any]]:
    """One row per residual (or plain) block, in execution order: ``block``, ``type``,
    ``input`` and ``output`` shapes (C, H, W) and ``shortcut`` (what is added)."""
    blocks = []
    for name, mod in model.named_modules():
        is_block, sc, plain = _shortcut_of(mod)
        if is_block and name:
            blocks.append((name, mod, sc, plain))
    if not blocks:
        return []
    seen: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}

    def hook(name: str):
        def record(mod: nn.Module, args: tuple, out: torch.Tensor) -> None:  # returns None: the output is kept
            seen.setdefault(name, (tuple(args[0].shape[1:]), tuple(out.shape[1:])))
        return record

    with measuring(model, [m.register_forward_hook(hook(n)) for n, m, _, _ in blocks]) as zeros, torch.no_grad():
        model(zeros(input_shape))
    rows = []
    for name, mod, sc, plain in blocks:
        if name not in seen:
            continue
        i, o = seen[name]
        stride = i[-1] // o[-1] if len(i) == 3 and o[-1] else 1
        rows.append({"block": name, "type": type(mod).__name__, "input": list(i), "output": list(o),
                     "shortcut": _describe(sc, plain, i[0], o[0], stride)})
    return rows


def print_residual_blocks(rows: list[dict[str, Any]], console: Any = None) -> None:
    """The blocks as a rich table: ``out = ReLU(F(x) + shortcut(x))`` row by row."""
    if not rows:
        return
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    plain = all(r["shortcut"].startswith("none") for r in rows)
    title = ("plain blocks: out = ReLU(F(x)), no shortcut" if plain
             else "residual blocks: out = ReLU(F(x) + shortcut(x)); the addition is at each block's end")
    tab = Table(title=title, header_style="bold")
    for col in ("block", "type", "input (CxHxW)", "output", "shortcut added"):
        tab.add_column(col)
    for r in rows:
        changed = r["input"] != r["output"]
        short = f"[yellow]{r['shortcut']}[/]" if changed else r["shortcut"]
        tab.add_row(r["block"], r["type"], "x".join(map(str, r["input"])), "x".join(map(str, r["output"])), short)
    console.print(tab)
