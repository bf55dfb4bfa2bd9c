"""The chapter's AlexNet table, exactly, next to torchvision's AlexNet (a later variant).

The chapter's AlexNet (Krizhevsky et al. 2012, as one network: no two-GPU split, no LRN,
which has no parameters) on a 227x227x3 input:

=========  ============  ===========  =======  ============
layer      output        weights      biases   parameters
=========  ============  ===========  =======  ============
Conv-1     55x55x96      34,848       96       34,944
MaxPool-1  27x27x96
Conv-2     27x27x256     614,400      256      614,656
MaxPool-2  13x13x256
Conv-3     13x13x384     884,736      384      885,120
Conv-4     13x13x384     1,327,104    384      1,327,488
Conv-5     13x13x256     884,736      256      884,992
MaxPool-3  6x6x256
FC-1       4096          37,748,736   4,096    37,752,832
FC-2       4096          16,777,216   4,096    16,781,312
FC-3       1000          4,096,000    1,000    4,097,000
total                                          62,378,344
=========  ============  ===========  =======  ============

Why 227, not the paper's 224, and how torchvision's ``alexnet`` (61,100,840 parameters) differs:
docs/shapes.md ("Where the chapter is wrong").

Every number below is measured on a real ``nn.Module`` with forward hooks
(:func:`~convlens.shapes.table.layer_table`); the arithmetic comes from
:func:`~convlens.shapes.formula.conv_layer`.
"""
from __future__ import annotations

from typing import Any

import torch.nn as nn

from ..errors import ConvlensError
from .formula import conv_layer, output_size
from .table import LayerTable, cross_check, layer_table

CHAPTER_TOTAL = 62_378_344
TORCHVISION_TOTAL = 61_100_840


class ChapterAlexNet(nn.Module):
    """AlexNet as the chapter's table counts it.

    Shapes: (B, 3, 227, 227) -> features (B, 256, 6, 6) -> flatten (B, 9216) -> (B, 4096)
    -> (B, 4096) -> (B, num_classes).
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(4096, num_classes),
        )
        self.pretrained_cfg = {"input_size": (3, 227, 227), "num_classes": num_classes}

    def forward(self, x):
        return self.classifier(self.features(x))


def _whd(chw: list[int]) -> str:
    return "x".join(map(str, (chw[2], chw[1], chw[0]))) if len(chw) == 3 else str(chw[-1])


def chapter_rows(model: nn.Module, table: LayerTable) -> list[dict[str, Any]]:
    """The table's convolution, pooling and fully-connected rows in the chapter's notation
    (``W x H x D``), each with its size arithmetic (``"(227-11+2*0)/4+1 = 55"``) and the
    product giving its weights (``"11*11*3*96"``)."""
    mods = dict(model.named_modules())
    counts: dict[str, int] = {}
    first = table.rows[0]["input_shape"]
    rows: list[dict[str, Any]] = [{"layer": "Input", "output": _whd(first), "output_shape": first, "weights": 0, "biases": 0,
                                   "params": 0, "arithmetic": "", "weights_arithmetic": "", "macs": 0, "receptive_field": 1}]
    for r in table.rows:
        m = mods.get(r["name"])
        if isinstance(m, nn.Conv2d):
            kind = "Conv"
            res = conv_layer(r["input_shape"][::-1], m.out_channels, m.kernel_size[::-1], m.stride[::-1], m.padding[::-1],
                             bias=m.bias is not None, floor=True, check_with_torch=False)
            arith, warith = res["steps"][0]["short"], res["weights_short"]
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            kind = "MaxPool" if isinstance(m, nn.MaxPool2d) else "AvgPool"
            k, s, p = (v if isinstance(v, int) else v[0] for v in (m.kernel_size, m.stride, m.padding))
            arith, warith = output_size(r["input_shape"][2], k, s, p, floor=True)["short"], ""
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            kind, arith, warith = "AdaptiveAvgPool", "fixed output size", ""
        elif isinstance(m, nn.Linear):
            kind, arith, warith = "FC", "", f"{m.in_features}*{m.out_features}"
        else:
            continue
        counts[kind] = counts.get(kind, 0) + 1
        rf = r["receptive_field"]
        rows.append({"layer": f"{kind}-{counts[kind]}", "module": r["name"], "output": _whd(r["output_shape"]),
                     "output_shape": r["output_shape"], "weights": r["weights"], "biases": r["biases"], "params": r["params"],
                     "arithmetic": arith, "weights_arithmetic": warith, "macs": r["macs"],
                     "receptive_field": (int(rf[0]) if r["jump"] else "all") if rf else None})
    return rows


def alexnet_tables(check: bool = True) -> dict[str, Any]:
    """The chapter's AlexNet table and torchvision's, measured.

    Returns ``{"chapter": {"rows", "totals", "input"}, "torchvision": {...}, "difference",
    "paper_224": <the refused arithmetic for a 224 input>}``; rows are plain dicts.
    """
    from ..models import create_model

    out: dict[str, Any] = {}
    for key, model, shape in (("chapter", ChapterAlexNet(), (3, 227, 227)),
                              ("torchvision", create_model("tv/alexnet", pretrained=False), (3, 224, 224))):
        table = layer_table(model, shape, model_name=f"{key} alexnet")
        if check:
            cross_check(model, table)
        out[key] = {"input": _whd(list(shape)), "rows": chapter_rows(model, table), "totals": table.totals, "checks": table.checks}
    out["difference"] = out["chapter"]["totals"]["params"] - out["torchvision"]["totals"]["params"]
    try:
        output_size(224, 11, 4, 0)
        out["paper_224"] = None
    except ConvlensError as exc:
        out["paper_224"] = str(exc)
    return out
