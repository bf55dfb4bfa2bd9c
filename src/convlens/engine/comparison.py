"""``compare()``: several models, one recipe, one side-by-side report (the chapter's DNN vs CNN)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..reports import Report, plot_compare_curves
from ..runs import RunDir, RunResult, atomic_write_json, default_run_name
from .config import TrainConfig
from .distributed import global_rank
from .training import train


def compare(cfg: TrainConfig, models: Sequence[str], name: str | None = None, listeners: Sequence[Any] = ()) -> RunResult:
    """Train each of ``models`` with ``cfg`` into ``<out>/<name>/<model>/`` and write
    ``<out>/<name>/report.html`` (table of accuracy, parameters, time; curves overlaid). Returns the
    comparison folder's :class:`~convlens.runs.RunResult`: ``result["table"]``, and each model's own
    result in ``result.members`` (``result["results"]``)."""
    folder = Path(cfg.out) / (name or cfg.name or default_run_name(f"compare-{'-'.join(models)}"))
    results = {m: train(replace(cfg, model=m, out=str(folder), name=m), listeners=listeners) for m in models}
    folder = results[models[0]].run.path.parent  # ddp: rank 0's folder (another rank's clock may name another)
    table = []
    for m, res in results.items():
        s = res.summary or res.run.summary()  # ddp: every rank has the summary, only rank 0 the file
        table.append({"model": m, "test accuracy": round(res.test_acc, 4), "best epoch (val)": res.best_epoch,
                      "test acc at best epoch": s.get("test_acc_at_best_epoch"), "parameters": s["params"],
                      "train seconds": s["train_seconds"],
                      "train images/s": round(s["train_images"] * s["epochs"] / max(s["train_seconds"], 1e-9))})
    if global_rank() != 0:  # ddp: rank 0 writes the files
        return {"folder": folder, "results": results, "table": table}
    atomic_write_json(folder / "comparison.json", table)
    histories = {m: res.history for m, res in results.items()}
    fig_path = RunDir(folder).save_figure(plot_compare_curves(histories, title=f"{' vs '.join(models)} on {cfg.data}"),
                                          "compare_curves")
    r = Report(f"convlens compare: {' vs '.join(models)} on {cfg.data}",
               subtitle=f"{cfg.epochs} epochs, batch {cfg.batch_size}, {cfg.optimizer} lr {cfg.lr}, seed {cfg.seed}")
    r.table(table).image(fig_path, "training loss and test accuracy per epoch")
    if all(any("train_acc" in h for h in hist) for hist in histories.values()):
        from .degradation import degradation_verdict, training_error_figure  # He et al.'s Figure 1/6

        err_path = RunDir(folder).save_figure(training_error_figure(histories), "training_error")
        r.image(err_path, "training error per epoch (on the fly, augmented batches): plain dashed, ResNets solid")
        for line in degradation_verdict(histories):
            r.note(line)
    for m in results:
        r.link(f"{m}/report.html", f"full report of {m}")
    r.write(folder / "report.html")
    return RunResult(RunDir(folder), [], {"table": table, "models": list(models)}, {"compare_curves": fig_path}, members=results)
