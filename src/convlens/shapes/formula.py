"""The chapter's size formula, evaluated step by step, and the same formula for any torch layer.

For one spatial dimension of size :math:`W_1`, a filter of size :math:`F`, stride :math:`S`,
zero padding :math:`P` and dilation :math:`D` (the chapter has :math:`D = 1`):

.. math::
    F_\\text{eff} = D(F - 1) + 1, \\qquad W_2 = \\frac{W_1 - F_\\text{eff} + 2P}{S} + 1

When :math:`W_1 - F_\\text{eff} + 2P` is not a multiple of :math:`S` the filter does not tile
the input. PyTorch then silently floors (the last rows/columns are never seen); the chapter's
rule, and :func:`output_size`, refuse the configuration and print the arithmetic.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn as nn

from ..errors import ConvlensError

Pair = int | Sequence[int]


def _pair(v: Pair, n: int, what: str) -> tuple[int, ...]:
    if isinstance(v, int):
        return (v,) * n
    v = tuple(int(x) for x in v)
    if len(v) == 1:
        return v * n
    if len(v) != n:
        raise ConvlensError(f"--{what} {v}: give one number or {n} numbers")
    return v


def output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1, *,
                dim: str = "W", floor: bool = False) -> dict[str, Any]:
    """:math:`W_2 = (W_1 - F + 2P)/S + 1` for one dimension, with its arithmetic.

    Returns ``{"dim", "input", "kernel", "stride", "padding", "dilation", "numerator",
    "output", "exact", "dropped", "arithmetic"}``; ``arithmetic`` reads e.g.
    ``W2 = (32 - 5 + 2*2)/1 + 1 = 31/1 + 1 = 32``. ``dropped`` counts the input rows/columns
    PyTorch never reads when the division is not exact.

    Raises:
        ConvlensError: a negative/zero argument, a filter larger than the padded input, or
            (unless ``floor=True``, PyTorch's behaviour) a size that is not a whole number.
    """
    for name, v, low in (("input", size, 1), ("kernel", kernel, 1), ("stride", stride, 1), ("padding", padding, 0), ("dilation", dilation, 1)):
        if int(v) != v or v < low:
            raise ConvlensError(f"--{name} {v}: must be a whole number >= {low}")
    f_eff = dilation * (kernel - 1) + 1
    f_txt = f"{f_eff}" if dilation == 1 else f"{f_eff} (= {dilation}*({kernel}-1)+1)"
    num = size - f_eff + 2 * padding
    head = f"{dim}2 = ({size} - {f_txt} + 2*{padding})/{stride} + 1"
    if num < 0:
        raise ConvlensError(f"{head} = {num}/{stride} + 1: the {f_eff}-wide filter is larger than the padded input "
                            f"({size} + 2*{padding} = {size + 2 * padding}); use a smaller --kernel or more --padding")
    exact = num % stride == 0
    out = num // stride + 1
    if exact:
        arithmetic = f"{head} = {num}/{stride} + 1 = {out}"
    else:
        arithmetic = f"{head} = {num}/{stride} + 1 = {num / stride + 1:g}"
        if not floor:
            fix = next((p for p in range(padding + 1, padding + stride + 1) if (size - f_eff + 2 * p) % stride == 0), None)
            grow = stride - num % stride  # the next input size the filter tiles exactly
            hint = (f"e.g. --padding {fix} gives {(size - f_eff + 2 * fix) // stride + 1}" if fix is not None else
                    f"e.g. an input of {size + grow} gives {(num + grow) // stride + 1}")
            raise ConvlensError(f"{arithmetic} is not a whole number: a filter of width {f_eff} with stride {stride} does not tile "
                                f"{size} + 2*{padding}; change --kernel, --stride, --padding or --input ({hint}); "
                                f"PyTorch would silently floor to {out} and never read the last {num % stride} pixel(s)")
        arithmetic += f" -> floor = {out} (PyTorch; the last {num % stride} pixel(s) are never read)"
    short = f"({size}-{f_eff}+2*{padding})/{stride}+1 = " + (f"{out}" if exact else f"{num / stride + 1:g} -> {out}")
    return {"dim": dim, "input": size, "kernel": kernel, "stride": stride, "padding": padding, "dilation": dilation,
            "numerator": num, "output": out, "exact": exact, "dropped": num % stride, "arithmetic": arithmetic,
            "short": short}


def conv_layer(input: Sequence[int], filters: int, kernel: Pair, stride: Pair = 1, padding: Pair = 0,
               dilation: Pair = 1, bias: bool = True, floor: bool = False, check_with_torch: bool = True) -> dict[str, Any]:
    """A convolutional layer in the chapter's notation.

    Args:
        input: ``(W1, H1, D1)`` (the chapter's order: width, height, depth/channels).
        filters: :math:`K`, the number of filters (= output depth :math:`D_2`).
        kernel, stride, padding, dilation: one int, or ``(width, height)``.

    Returns a dict with ``output`` ``(W2, H2, D2)``, ``steps`` (one :func:`output_size` per
    dimension), ``weights`` :math:`= F_W F_H D_1 K`, ``biases`` :math:`= K`, ``params``,
    ``macs`` :math:`= W_2 H_2 K F_W F_H D_1` (multiply-accumulates per image), ``flops``
    :math:`= 2\\,\\text{MACs}`, and ``torch_output`` (the shape ``nn.Conv2d`` really produced).
    """
    w1, h1, d1 = _whd(input)
    if int(filters) != filters or filters < 1:
        raise ConvlensError(f"--filters {filters}: must be a whole number >= 1")
    (kw, kh), (sw, sh), (pw, ph), (dw, dh) = (_pair(v, 2, n) for v, n in ((kernel, "kernel"), (stride, "stride"), (padding, "padding"), (dilation, "dilation")))
    sx = output_size(w1, kw, sw, pw, dw, dim="W", floor=floor)
    sy = output_size(h1, kh, sh, ph, dh, dim="H", floor=floor)
    w2, h2 = sx["output"], sy["output"]
    weights = kw * kh * d1 * filters
    res: dict[str, Any] = {
        "kind": "conv", "input": (w1, h1, d1), "output": (w2, h2, filters), "steps": [sx, sy],
        "depth": f"D2 = K = {filters}",
        "weights": weights, "biases": filters if bias else 0, "params": weights + (filters if bias else 0),
        "weights_arithmetic": f"F_W*F_H*D1*K = {kw}*{kh}*{d1}*{filters} = {weights:,}",
        "weights_short": f"{kw}*{kh}*{d1}*{filters}",
        "macs": w2 * h2 * filters * kw * kh * d1,
        "macs_arithmetic": f"W2*H2*K*F_W*F_H*D1 = {w2}*{h2}*{filters}*{kw}*{kh}*{d1} = {w2 * h2 * filters * kw * kh * d1:,}",
        "output_values": w2 * h2 * filters,
    }
    res["flops"] = 2 * res["macs"]
    if check_with_torch:
        conv = nn.Conv2d(d1, filters, (kh, kw), (sh, sw), (ph, pw), (dh, dw), bias=bias)
        res["torch_output"], res["torch_params"] = _torch_whd(conv, w1, h1, d1), sum(p.numel() for p in conv.parameters())
    return res


def pool_layer(input: Sequence[int], kernel: Pair, stride: Pair | None = None, padding: Pair = 0, kind: str = "max",
               floor: bool = False, check_with_torch: bool = True) -> dict[str, Any]:
    """A pooling layer: :math:`W_2 = (W_1 - F + 2P)/S + 1`, :math:`D_2 = D_1`, no parameters.

    ``input`` is ``(W1, H1, D1)``; ``stride`` defaults to the kernel size (PyTorch's default).
    ``torch_output`` is what ``nn.MaxPool2d``/``nn.AvgPool2d`` really produced.
    """
    w1, h1, d1 = _whd(input)
    k = _pair(kernel, 2, "kernel")
    s = k if stride is None else _pair(stride, 2, "stride")
    p = _pair(padding, 2, "padding")
    if any(2 * pi > ki for pi, ki in zip(p, k)):
        raise ConvlensError(f"--padding {padding}: pooling padding must be at most half the kernel ({k}); PyTorch refuses more")
    sx = output_size(w1, k[0], s[0], p[0], dim="W", floor=floor)
    sy = output_size(h1, k[1], s[1], p[1], dim="H", floor=floor)
    res: dict[str, Any] = {"kind": f"{kind}pool", "input": (w1, h1, d1), "output": (sx["output"], sy["output"], d1),
                           "steps": [sx, sy], "depth": f"D2 = D1 = {d1}", "weights": 0, "biases": 0, "params": 0,
                           "weights_arithmetic": "pooling has no parameters", "macs": 0, "flops": 0,
                           "output_values": sx["output"] * sy["output"] * d1}
    if check_with_torch:
        res["torch_output"] = _torch_whd((nn.MaxPool2d if kind == "max" else nn.AvgPool2d)((k[1], k[0]), (s[1], s[0]), (p[1], p[0])),
                                         w1, h1, d1)
    return res


def _torch_whd(layer: nn.Module, w1: int, h1: int, d1: int) -> tuple[int, int, int]:
    """The ``(W2, H2, D2)`` that ``layer`` really gives on a zero ``W1 x H1 x D1`` input."""
    with torch.no_grad():
        y = layer(torch.zeros(1, d1, h1, w1))
    return (y.shape[3], y.shape[2], y.shape[1])


def _whd(input: Sequence[int]) -> tuple[int, int, int]:
    v = tuple(int(x) for x in input)
    if len(v) == 2:
        v = (*v, 1)
    if len(v) != 3 or min(v) < 1:
        raise ConvlensError(f"--input {input}: give W1xH1xD1, e.g. 32x32x3")
    return v  # type: ignore[return-value]


def parse_dims(text: str, what: str = "--input") -> tuple[int, ...]:
    """``"32x32x3"`` -> ``(32, 32, 3)`` (``x``, ``X``, ``*`` or ``,`` separate numbers)."""
    parts = text.lower().replace("*", "x").replace(",", "x").replace("×", "x").split("x")
    try:
        dims = tuple(int(p) for p in parts if p.strip())
    except ValueError:
        raise ConvlensError(f"{what} {text!r}: give whole numbers separated by x, e.g. 32x32x3") from None
    if not dims or min(dims) < 1:
        raise ConvlensError(f"{what} {text!r}: give positive whole numbers separated by x, e.g. 32x32x3")
    return dims


# ---- the same formula for any torch layer ------------------------------------------------------

_SAME_SHAPE = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm1d,
               nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LocalResponseNorm, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
               nn.Dropout3d, nn.AlphaDropout, nn.Identity, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU,
               nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh,
               nn.Softmax, nn.LogSoftmax, nn.Softplus)

# stochastic depth / drop path (torchvision, timm) and timm's own activation classes keep the shape
_SAME_SHAPE_NAMES = {"StochasticDepth", "DropPath", "DropBlock2d", "GELU", "GELUTanh", "QuickGELU", "Swish", "HardSwish",
                     "HardSigmoid", "Sigmoid", "Tanh", "Mish", "PReLU", "LayerNorm2d", "RmsNorm", "LayerScale"}


def _pool_out(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> tuple[int, bool]:
    """PyTorch's pooling size (ceil_mode: the last window must start inside input + left padding)."""
    num = n + 2 * p - d * (k - 1) - 1
    out = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out, num % s == 0


def layer_output_shape(module: nn.Module, in_shape: Sequence[int]) -> tuple[tuple[int, ...], bool] | None:
    """The output shape the size formula predicts for ``module`` on an input of ``in_shape``
    (with batch dimension), and whether every division was exact (``False``: PyTorch floored
    and some input pixels are never read). ``None`` when no formula is known for the layer.
    """
    shape = tuple(int(v) for v in in_shape)
    name = type(module).__name__
    if name in ("Conv2dSame", "MaxPool2dSame", "AvgPool2dSame"):  # timm: TF 'SAME' padding, out = ceil(n / s)
        s = _pair(module.stride, 2, "stride")
        c = module.out_channels if hasattr(module, "out_channels") else shape[1]
        return (shape[0], c, *(-(-n // si) for n, si in zip(shape[2:], s))), True
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        nd = len(module.kernel_size)
        out = [(n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n, k, s, p, d, op in
               zip(shape[-nd:], module.kernel_size, module.stride, module.padding, module.dilation, module.output_padding)]
        return (*shape[:-nd - 1], module.out_channels, *out), True
    if isinstance(module, nn.modules.conv._ConvNd):
        nd = len(module.kernel_size)
        if module.padding == "same":
            return (*shape[:-nd - 1], module.out_channels, *shape[-nd:]), True
        pad = (0,) * nd if module.padding == "valid" else module.padding
        sizes = [output_size(n, k, s, p, d, floor=True) for n, k, s, p, d in
                 zip(shape[-nd:], module.kernel_size, module.stride, pad, module.dilation)]
        return (*shape[:-nd - 1], module.out_channels, *(r["output"] for r in sizes)), all(r["exact"] for r in sizes)
    if isinstance(module, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)):
        nd = int(name[-2]) if name[-2].isdigit() else 2
        k, s, p = (_pair(v, nd, "pool") for v in (module.kernel_size, module.stride or module.kernel_size, module.padding))
        d = _pair(getattr(module, "dilation", 1), nd, "dilation")
        res = [_pool_out(n, *a, module.ceil_mode) for n, *a in zip(shape[-nd:], k, s, p, d)]
        return (*shape[:-nd], *(r[0] for r in res)), all(r[1] for r in res)
    if isinstance(module, (nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)):
        nd = int(name[-2])
        o = module.output_size
        o = (o,) * nd if isinstance(o, int) or o is None else tuple(o)
        return (*shape[:-nd], *(n if oi is None else oi for n, oi in zip(shape[-nd:], o))), True
    if isinstance(module, nn.Linear):
        return (*shape[:-1], module.out_features), True
    if isinstance(module, nn.Flatten):
        s, e = module.start_dim % len(shape), module.end_dim % len(shape)
        return (*shape[:s], math.prod(shape[s:e + 1]), *shape[e + 1:]), True
    if isinstance(module, nn.ZeroPad2d):
        l, r, t, b = module.padding
        return (*shape[:-2], shape[-2] + t + b, shape[-1] + l + r), True
    if isinstance(module, nn.Upsample) and module.scale_factor is not None:
        nd = len(shape) - 2
        sf = _pair(module.scale_factor, nd, "scale") if isinstance(module.scale_factor, int) else \
            tuple(module.scale_factor) if isinstance(module.scale_factor, (tuple, list)) else (module.scale_factor,) * nd
        return (*shape[:2], *(int(math.floor(n * f)) for n, f in zip(shape[2:], sf))), True
    if name == "Permute" and hasattr(module, "dims"):  # torchvision.ops.Permute (ConvNeXt's NCHW <-> NHWC)
        return tuple(shape[d] for d in module.dims), True
    if isinstance(module, _SAME_SHAPE) or name in _SAME_SHAPE_NAMES:
        return shape, True
    return None
