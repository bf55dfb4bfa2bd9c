"""Figures of layer tables: where the parameters, the compute and the memory are."""
from __future__ import annotations

from typing import Any

from .table import LayerTable


def plot_layer_table(table: LayerTable, max_layers: int = 80) -> Any:
    """Three panels over the layers (execution order): parameters, MACs, activation memory,
    with the receptive field on a second axis of the last. Layers with none of the three
    are left out; with more than ``max_layers`` rows only the heaviest are kept, in order."""
    from ..figures import headless_backend

    headless_backend()
    import matplotlib.pyplot as plt

    rows = [r for r in table.rows if r["params"] or r["macs"] or r["activation_bytes"]]
    if len(rows) > max_layers:
        rows = sorted(sorted(rows, key=lambda r: -(r["params"] + r["macs"]))[:max_layers], key=lambda r: r["index"])
    xs = range(len(rows))
    fig, axes = plt.subplots(3, 1, figsize=(max(8, 0.22 * len(rows) + 3), 8.5), sharex=True)
    for ax, key, title, scale in ((axes[0], "params", "parameters", 1), (axes[1], "macs", "MACs per image (millions)", 1e6),
                                  (axes[2], "activation_bytes", f"output memory at batch {table.batch_size} (MiB)", 1 << 20)):
        ax.bar(xs, [r[key] / scale for r in rows], color="#2e86c1")
        ax.set_ylabel(title, fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    rf_x = [i for i, r in enumerate(rows) if r["receptive_field"] and r["jump"]]
    if rf_x:
        ax2 = axes[2].twinx()
        ax2.plot(rf_x, [max(rows[i]["receptive_field"]) for i in rf_x], "-", color="#c0392b", lw=1.2)
        ax2.set_ylabel("receptive field (pixels)", color="#c0392b", fontsize=8)
    axes[2].set_xticks(list(xs), [r["name"] for r in rows], rotation=90, fontsize=6)
    t = table.totals
    fig.suptitle(f"{table.model_name} on {'x'.join(map(str, table.input_shape))}: {t['params']:,} parameters, "
                 f"{t['macs'] / 1e6:,.1f}M MACs per image", fontsize=10)
    fig.tight_layout()
    return fig


def plot_alexnet(res: dict[str, Any]) -> Any:
    """Parameters per layer of the chapter's AlexNet next to torchvision's (log scale)."""
    from ..figures import headless_backend

    headless_backend()
    import matplotlib.pyplot as plt
    import numpy as np

    names = [r["layer"] for r in res["chapter"]["rows"] if r["params"]]
    tv = {r["layer"]: r["params"] for r in res["torchvision"]["rows"]}
    ch = {r["layer"]: r["params"] for r in res["chapter"]["rows"]}
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(9, 4))
    for dx, key, params in ((-0.2, "chapter", [ch[n] for n in names]), (0.2, "torchvision", [tv.get(n, 0) for n in names])):
        bars = ax.bar(x + dx, params, 0.4, label=f"{key} ({res[key]['totals']['params']:,})")
        ax.bar_label(bars, labels=[f"{v / 1e6:.2f}M" for v in params], fontsize=7, rotation=90, padding=2)
    ax.set_yscale("log")
    ax.set_xticks(x, names)
    ax.set_ylabel("parameters")
    ax.set_ylim(top=max(ch.values()) * 20)
    ax.legend(loc="upper left")
    fc = sum(r["params"] for r in res["chapter"]["rows"] if r["layer"].startswith("FC"))
    ax.set_title(f"AlexNet: parameters per layer (the fully-connected layers hold {fc / res['chapter']['totals']['params']:.0%})")
    fig.tight_layout()
    return fig
