"""Terminal rendering (rich) of layer tables, the size formula, the AlexNet table and the demos."""
from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .table import LayerTable


def console() -> Console:
    """A console for the tables: the terminal's width, or 200 columns when piped to a file
    (so no number is ever cut)."""
    return Console() if sys.stdout.isatty() else Console(width=200)


def _fit(tab: Table) -> Table:
    """Numbers are never wrapped or cut: right-aligned columns keep their widest cell."""
    for col in tab.columns:
        if col.justify == "right":
            cells = [Text.from_markup(c).cell_len if isinstance(c, str) else 0 for c in col._cells]
            col.min_width = max([Text.from_markup(str(col.header)).cell_len // 2] + cells)
            col.no_wrap = True
    return tab


def _n(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and not v.is_integer():
        return f"{v:g}"
    return f"{int(v):,}" if isinstance(v, (int, float)) else str(v)


def _bytes(b: int) -> str:
    for unit, k in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if b >= k:
            return f"{b / k:.1f} {unit}"
    return f"{b} B"


def _si(v: int) -> str:
    for unit, k in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= k:
            return f"{v / k:.2f}{unit}"
    return str(v)


def _rf(r: dict[str, Any]) -> str:
    rf = r["receptive_field"]
    if not rf:
        return ""
    txt = _n(rf[0]) if len(set(rf)) == 1 else "x".join(_n(v) for v in rf)
    return txt if r["jump"] else "all"


def print_layer_table(table: LayerTable, console: Console | None = None, max_rows: int | None = None) -> None:
    """Rows, totals and cross-checks of :class:`LayerTable` as rich tables."""
    console = console or globals()['console']()
    t = table.totals
    frozen = t["frozen"] > 0
    tab = Table(title=f"{table.model_name}: input {'x'.join(map(str, table.input_shape))} (CxHxW), batch {table.batch_size}",
                show_lines=False, header_style="bold")
    wide = console.width >= 130  # narrow terminals drop the type/weights/biases columns (files keep them)
    cols = [("#", "right"), ("layer", "left")] + ([("type", "left")] if wide else []) + [("output (CxHxW)", "right"), ("formula", "center")]
    cols += ([("weights", "right"), ("biases", "right")] if wide else []) + [("params", "right")] + ([("frozen", "right")] if frozen else [])
    cols += [("MACs", "right"), ("RF", "right"), (f"mem N={table.batch_size}", "right")]
    for col, just in cols:
        tab.add_column(col, justify=just, min_width={"layer": 12, "formula": 7}.get(col))
    rows = table.rows[:max_rows]
    for r in rows:
        mark = "" if r["formula_ok"] is None else ("[red]MISMATCH[/]" if not r["formula_ok"] else ("✓" if r["exact"] else "[yellow]floor[/]"))
        cells = [str(r["index"]), r["name"]] + ([r["type"]] if wide else []) + ["x".join(map(str, r["output_shape"])), mark]
        if wide:
            cells += [_n(r["weights"]) if r["params"] else "", _n(r["biases"]) if r["params"] else ""]
        cells.append(_n(r["params"]) if r["params"] else "")
        if frozen:
            cells.append(_n(r["frozen"]) if r["frozen"] else "")
        cells += [_si(r["macs"]) if r["macs"] else "", _rf(r), _bytes(r["activation_bytes"]) if r["activation_bytes"] else ""]
        tab.add_row(*cells)
    if len(rows) < len(table.rows):
        tab.add_row("…", f"{len(table.rows) - len(rows)} more rows (--csv/--json have them all)", *[""] * (len(tab.columns) - 2))
    console.print(_fit(tab))
    console.print(f"[bold]parameters[/] {t['params']:,} (trainable {t['trainable']:,}, frozen {t['frozen']:,}; "
                  f"weights {t['weights']:,} + biases {t['biases']:,} in the layers run)"
                  + (f"; {t['params'] - t['params_in_forward']:,} in layers the forward pass never used" if t["params"] != t["params_in_forward"] else ""))
    ops = ", ".join(f"{k} {_si(v)}" for k, v in t["macs_by_op"].items())
    console.print(f"[bold]compute[/] {t['macs']:,} MACs = {t['flops']:,} FLOPs per image ({ops})")
    console.print(f"[bold]memory[/] activations {_bytes(t['activation_bytes'])} at batch {table.batch_size} (sum of layer outputs), "
                  f"input {_bytes(t['input_bytes'])}, parameters {_bytes(t['param_bytes'])}")
    if t["receptive_field"]:
        console.print(f"[bold]receptive field[/] of the last spatial feature map: {'x'.join(_n(v) for v in t['receptive_field'])} pixels")
    console.print(f"[bold]size formula[/] checked on {t['formula_checked']} of {t['layers']} layers: "
                  + ("all equal to the forward pass" if not t["formula_mismatches"] else f"[red]{len(t['formula_mismatches'])} differ: {t['formula_mismatches'][:3]}[/]")
                  + (f"; PyTorch floored a non-whole size in {len(t['floored_layers'])} layer(s): {', '.join(t['floored_layers'][:4])}"
                     + ("…" if len(t["floored_layers"]) > 4 else "") if t["floored_layers"] else ""))
    print_checks(table.checks, console)


def print_checks(checks: list[dict[str, Any]], console: Console) -> None:
    if not checks:
        return
    tab = Table(title="cross-checks", header_style="bold")
    for c in ("quantity", "convlens", "reference", "library", ""):
        tab.add_column(c, justify="right" if c in ("convlens", "reference") else "left")
    for c in checks:
        tab.add_row(c["what"], _n(c["convlens"]), _n(c["reference"]), c["library"],
                    "[green]equal[/]" if c["match"] else "[red]differs[/] " + "; ".join(c.get("mismatches", [])))
    console.print(_fit(tab))


def print_formula(res: dict[str, Any], console: Console | None = None) -> None:
    """The size formula's steps for :func:`~convlens.shapes.formula.conv_layer`/``pool_layer``."""
    console = console or globals()['console']()
    console.print(f"[bold]{res['kind']}[/]: input W1 x H1 x D1 = {'x'.join(map(str, res['input']))}")
    for s in res["steps"]:
        console.print(f"  {s['arithmetic']}")
    console.print(f"  {res['depth']}")
    console.print(f"  [bold]output {'x'.join(map(str, res['output']))}[/] ({res['output_values']:,} values)")
    console.print(f"  weights {res['weights_arithmetic']}; biases {res['biases']}; parameters {res['params']:,}")
    if res["macs"]:
        console.print(f"  MACs {res['macs_arithmetic']} (FLOPs = 2 x MACs = {res['flops']:,})")
    if "torch_output" in res:
        console.print(f"  torch: {'x'.join(map(str, res['torch_output']))}" + (f", {res['torch_params']:,} parameters" if "torch_params" in res else "")
                      + (" [green](same)[/]" if tuple(res["torch_output"]) == tuple(res["output"]) else " [red](differs)[/]"))


def print_alexnet(res: dict[str, Any], console: Console | None = None) -> None:
    console = console or globals()['console']()
    for key, title in (("chapter", "AlexNet as in the chapter"), ("torchvision", "torchvision's alexnet (a later variant)")):
        part = res[key]
        tab = Table(title=f"{title}: input {part['input']}", header_style="bold")
        for c in ("layer", "output", "W2 = (W1-F+2P)/S+1", "weights", "", "biases", "parameters", "RF"):
            tab.add_column(c, justify="left" if c in ("layer", "W2 = (W1-F+2P)/S+1", "") else "right")
        for r in part["rows"]:
            tab.add_row(r["layer"], r["output"], r["arithmetic"], _n(r["weights"]) if r["params"] else "",
                        f"= {r['weights_arithmetic']}" if r["weights_arithmetic"] else "",
                        _n(r["biases"]) if r["params"] else "", _n(r["params"]) if r["params"] else "", str(r["receptive_field"] or ""))
        tab.add_row("[bold]total[/]", "", f"{part['totals']['macs'] / 1e6:,.0f}M MACs/image", f"{part['totals']['weights']:,}", "",
                    f"{part['totals']['biases']:,}", f"[bold]{part['totals']['params']:,}[/]", "")
        console.print(_fit(tab))
        print_checks(part["checks"], console)
    console.print(f"the chapter's AlexNet has {res['difference']:,} more parameters than torchvision's "
                  f"({res['chapter']['totals']['params']:,} vs {res['torchvision']['totals']['params']:,})")
    if res.get("paper_224"):
        console.print(f"[yellow]why 227, not the paper's 224:[/] {res['paper_224']}")


def _matrix(a: Any) -> str:
    rows = a if a and isinstance(a[0], list) else [a]
    cells = [[f"{v:g}" for v in r] for r in rows]
    width = max(len(c) for r in cells for c in r)
    return "\n".join("[ " + "  ".join(c.rjust(width) for c in r) + " ]" for r in cells)


def print_demo(res: dict[str, Any], console: Console | None = None) -> None:
    console = console or globals()['console']()
    console.print(f"[bold]{res['title']}[/]")
    items = list(res["arrays"].items())
    grid = Table.grid(padding=(0, 3))
    for _ in items[:4]:
        grid.add_column()
    for i in range(0, len(items), 4):
        chunk = items[i:i + 4]
        grid.add_row(*[f"[bold]{k}[/]\n{_matrix(v)}" for k, v in chunk])
        grid.add_row(*[""] * len(chunk))
    console.print(grid)
    for s in res["steps"]:
        console.print(f"  {s}")
    for n in res["notes"]:
        console.print(f"  • {n}")
