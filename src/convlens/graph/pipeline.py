"""``convlens graph train``: one call from data name to a finished run folder.

Node tasks (karate, cora, citeseer, user CSVs) write: metrics.jsonl (one row per epoch),
checkpoints/best.ckpt, plots/{curves,embedding,confusion}.png (+ graph.png for small graphs),
summary.json and report.html. Graph tasks (mutag) write the k-fold CV equivalent.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._runtime import set_threads
from ..errors import ConvlensError
from ..runs import RunDir, RunRecorder, RunResult, default_run_name
from .datasets import GRAPH_DATASETS, load_mutag, load_node_data

NODE_DEFAULTS = dict(hidden=16, epochs=200, lr=0.01, weight_decay=5e-4, dropout=0.5)
# Chosen on MUTAG fold split 0 (docs/graph.md, "MUTAG: what was tried"). The one-hot degree lifts
# GCN + mean: the mean readout and Â's normalisation otherwise hide how many bonds an atom has.
GRAPH_DEFAULTS = {"gcn": dict(hidden=64, layers=3, epochs=100, lr=0.005, dropout=0.0, degree_features=4),
                  "gin": dict(hidden=32, layers=4, epochs=50, lr=0.005, dropout=0.0, degree_features=4)}


def embed_2d(h: torch.Tensor, method: str = "auto", seed: int = 0) -> tuple[np.ndarray, str]:
    """(N, d) -> (N, 2) with t-SNE (``auto``: up to 5,000 nodes) or PCA (instant, linear)."""
    h = h.detach().cpu().numpy().astype(np.float64)
    if not np.isfinite(h).all():  # scikit-learn's t-SNE crashed the process (SIGSEGV) on NaN features
        raise ConvlensError(f"the hidden features hold {int((~np.isfinite(h)).sum())} inf/NaN values: training diverged; "
                            "lower --lr")
    if len(h) > 1 and float(np.ptp(h, axis=0).max()) == 0.0:  # t-SNE's PCA start divides by a zero variance
        raise ConvlensError("every node has the same hidden features (the network is dead: its ReLUs output 0): "
                            "training diverged; lower --lr")
    if method == "auto":
        method = "tsne" if len(h) <= 5000 else "pca"
    if method == "pca" or len(h) < 5:
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(h), "pca"
    if method != "tsne":
        raise ConvlensError(f"--embedding {method!r}: use tsne, pca or auto")
    from sklearn.manifold import TSNE

    perplexity = float(min(30, max(2, (len(h) - 1) // 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(h), "t-SNE"


def plot_embedding(xy: np.ndarray, y: torch.Tensor, class_names, title: str, test_mask: torch.Tensor):
    """Scatter of the 2-D embedding, colour = true class; labelled (training) nodes ringed."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 6))
    y = y.numpy()
    cmap = plt.get_cmap("tab10")
    s = 40 if len(y) <= 100 else 6
    for c, name in enumerate(class_names):
        m = y == c
        ax.scatter(xy[m, 0], xy[m, 1], s=s, color=cmap(c % 10), label=name, alpha=0.8, linewidths=0)
    tr = ~test_mask.numpy()
    ax.scatter(xy[tr, 0], xy[tr, 1], s=s * 3, facecolors="none", edgecolors="black", linewidths=0.6, label="train/val node")
    ax.legend(fontsize=8, markerscale=2 if len(y) > 100 else 1)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    return fig


def train_nodes(data, out: str | os.PathLike, seed: int = 0, embedding: str = "auto", progress: bool = True,
                listeners: Any = (), **hp) -> RunResult:
    """Train the node GCN on ``data`` (a PyG ``Data`` with masks) and write the run folder."""
    from .fitting import fit_node, hidden_features

    hp = {**NODE_DEFAULTS, **{k: v for k, v in hp.items() if v is not None}}
    run = RunDir.create(out, {"task": "node", "data": data.name, "model": "gcn", "seed": seed, **hp}, kind="graph")
    has_val = bool(data.val_mask.any())
    recorder = RunRecorder(run, "val_acc" if has_val else "last", listeners)
    recorder.start(hp["epochs"], f"GCN on {data.name}")
    fit = fit_node(data, seed=seed, progress=progress, **hp)
    for row in fit.history:  # a full-batch epoch takes milliseconds: recorded after the loop
        recorder.end_epoch({**row, "epoch": row["epoch"] + 1})
    names = list(data.class_names)
    from ..engine.checkpoint import checkpoint_meta, save_model_checkpoint

    meta = checkpoint_meta("graph/gcn", names, {"in_channels": data.num_features, "hidden_channels": hp["hidden"],
                                                "dropout": hp["dropout"], "num_layers": hp.get("layers", 2)})
    save_model_checkpoint(run.checkpoints_dir / "best.ckpt", fit.model, meta, epoch=fit.best_epoch + 1)
    fit.model.eval()
    with torch.no_grad():
        pred = fit.model(fit.extra["x"], data.edge_index).argmax(1)
    tm = data.test_mask
    summary = {"task": "node", "data": data.name, "model": "gcn", "seed": seed, "test_acc": fit.test_acc,
               "val_acc": fit.val_acc, "final_test_acc": fit.final_test_acc,
               "train_seconds": fit.seconds, "features": fit.extra["features"], "num_nodes": data.num_nodes,
               "num_train": int(data.train_mask.sum()), "num_val": int(data.val_mask.sum()), "num_test": int(tm.sum())}

    def report(summary: dict[str, Any]) -> dict[str, Any]:
        from ..engine.evaluate import confusion_matrix
        from ..reports import Report, plot_confusion_matrix, plot_curves
        from .matrices import plot_graph

        figs = {"curves": run.save_figure(plot_curves(run.metrics(), title=f"GCN on {data.name}"), "curves")}
        h = hidden_features(fit, data)
        xy, method = embed_2d(h, embedding, seed)
        figs["embedding"] = run.save_figure(plot_embedding(
            xy, data.y, names, f"{method} of the hidden GCN features ({h.shape[1]}-d), colour = true class", tm), "embedding")
        cm = confusion_matrix(data.y[tm].numpy(), pred[tm].numpy(), len(names))
        figs["confusion"] = run.save_figure(plot_confusion_matrix(cm, names, title=f"{data.name}: test nodes"), "confusion")
        if data.num_nodes <= 200:
            figs["graph"] = run.save_figure(plot_graph(data, node_color=pred, class_names=names, title=(
                f"{data.name}: predicted class (labelled: {int(data.train_mask.sum())} nodes)")), "graph_predicted")
        rep = Report(f"GCN on {data.name}", f"seed {seed}; {data.num_nodes} nodes, {data.edge_index.size(1) // 2} edges")
        rep.table([{"test accuracy": fit.test_acc,
                    "selected epoch": f"{summary['best_epoch']} ({'best val' if has_val else 'last; no val nodes'})",
                    "val accuracy": fit.val_acc if fit.val_acc is not None else "n/a",
                    "test acc, last epoch": fit.final_test_acc, "train seconds": fit.seconds}])
        rep.text("Model: Z = Â ReLU(Â dropout(X) W₀) W₁ with Â = D^-1/2 (A+I) D^-1/2 (PyG GCNConv). "
                 f"Training nodes {summary['num_train']}, validation {summary['num_val']}, test {summary['num_test']}.")
        for f, cap in zip(figs.values(), ["loss and accuracy per epoch", f"{method} of hidden node features",
                                          "confusion on test nodes", "graph coloured by prediction"]):
            rep.image(f, cap)
        rep.write(run.file(RunDir.REPORT))
        return figs

    return recorder.finish(summary, report, model=fit.model)


def plot_cv(res, title: str):
    import matplotlib.pyplot as plt

    from ..reports.plots import finish

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    ep = np.arange(1, res.curves.shape[1] + 1)
    m, s = res.curves.mean(0), res.curves.std(0)
    for c in res.curves:
        axes[0].plot(ep, c, color="gray", alpha=0.25, lw=0.7)
    axes[0].plot(ep, m, color="C0", label="mean over folds")
    axes[0].fill_between(ep, m - s, m + s, color="C0", alpha=0.2, label="± std")
    axes[0].axvline(res.best_epoch + 1, color="C3", ls=":", label=f"GIN-protocol epoch {res.best_epoch + 1}")
    axes[0].set_ylabel("test-fold accuracy")
    axes[0].legend(fontsize=8)
    axes[1].plot(ep, res.train_loss.mean(0), color="C1")
    axes[1].set_ylabel("train loss (mean over folds)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    return finish(fig, title)


def train_graphs(dataset, out: str | os.PathLike, model: str = "gcn", readout: str = "mean", folds: int = 10,
                 seed: int = 0, progress: bool = True, use_edge_attr: bool = True, listeners: Any = (), **hp) -> RunResult:
    """k-fold CV of a graph classifier; writes metrics (fold-mean per epoch), plots, summary, report."""
    from .cv import cross_validate

    if model not in GRAPH_DEFAULTS:
        raise ConvlensError(f"--model {model!r}: graph classification models are {', '.join(GRAPH_DEFAULTS)}")
    hp = {**GRAPH_DEFAULTS[model], **{k: v for k, v in hp.items() if v is not None}}
    cfg = {"task": "graph", "data": "mutag", "model": model, "readout": readout, "folds": folds, "seed": seed,
           "use_edge_attr": use_edge_attr, **hp}
    run = RunDir.create(out, cfg, kind="graph")
    recorder = RunRecorder(run, "last", listeners)  # the headline is the last epoch of each fold
    recorder.start(hp["epochs"], f"{model} on MUTAG, {folds}-fold CV")
    res = cross_validate(dataset, model=model, readout=readout, folds=folds, seed=seed, progress=progress,
                         use_edge_attr=use_edge_attr, **hp)
    for e in range(res.curves.shape[1]):  # fold means, recorded after the folds
        recorder.end_epoch({"epoch": e + 1, "test_acc": float(res.curves[:, e].mean()),
                            "test_acc_std": float(res.curves[:, e].std()), "train_loss": float(res.train_loss[:, e].mean())})
    edge_note = " + bond types (GINEConv)" if (model == "gin" and use_edge_attr) else ""
    title = f"{model}{edge_note}, {readout} readout, {folds}-fold CV on MUTAG"

    def report(summary: dict[str, Any]) -> dict[str, Any]:
        from ..reports import Report

        fig = run.save_figure(plot_cv(res, title), "cv_curves")
        rep = Report(title, f"seed {seed}; {len(dataset)} graphs, {res.curves.shape[1]} epochs per fold")
        rep.table([{"CV accuracy (last epoch)": f"{res.mean:.1%} ± {res.std:.1%}",
                    "GIN-protocol (best mean epoch, optimistic)":
                        f"{res.best_epoch_mean:.1%} ± {res.best_epoch_std:.1%} @ {res.best_epoch + 1}",
                    "seconds": res.seconds}])
        rep.table([{"fold": k + 1, "test accuracy": a} for k, a in enumerate(res.fold_acc)])
        rep.note("Headline = accuracy after the last epoch of each fold. The GIN paper's protocol picks the epoch with the "
                 "best mean test-fold accuracy, which looks at the test folds: shown for comparison with published numbers only.")
        rep.image(fig, "test-fold accuracy per epoch (grey: folds) and training loss")
        rep.write(run.file(RunDir.REPORT))
        return {"cv_curves": fig}

    return recorder.finish({"task": "graph", "data": "mutag", "model": model, "readout": readout, "seed": seed,
                            "test_acc": res.mean, **res.summary()}, report)


def train(data: str = "cora", model: str = "gcn", readout: str = "mean", out: str | os.PathLike | None = None,
          seed: int = 0, data_dir: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
          edges: str | os.PathLike | None = None, label_column: str = "label", folds: int = 10, embedding: str = "auto", threads: int | None = None,
          progress: bool = True, epochs: int | None = None, hidden: int | None = None, lr: float | None = None,
          dropout: float | None = None, layers: int | None = None, use_edge_attr: bool = True,
          degree_features: int | None = None, listeners: Any = ()) -> RunResult:
    """Train on ``data`` (karate | cora | citeseer | nodes CSV + ``edges`` | mutag); returns the
    :class:`~convlens.runs.RunResult` (``result["test_acc"]`` reads its summary).

    Node data -> GCN on the public split (karate: 1 labelled node per class; CSV: 60/20/20).
    ``mutag`` -> ``folds``-fold CV of ``model`` (gcn | gin) with ``readout`` (mean | sum | max).
    """
    # one thread unless asked: the ops are tiny, and a second thread made Cora 25x slower under load (docs/graph.md)
    set_threads(threads, default=1)
    name = Path(str(data)).stem if str(data).endswith(".csv") else str(data).lower()
    out = out or Path("runs") / default_run_name(f"graph-{name}-{model}")
    kw = dict(seed=seed, progress=progress, listeners=listeners, epochs=epochs, hidden=hidden, lr=lr, dropout=dropout, layers=layers)
    if str(data).lower() in GRAPH_DATASETS:
        return train_graphs(load_mutag(data_dir, cache_dir), out, model=model, readout=readout, folds=folds,
                            use_edge_attr=use_edge_attr, degree_features=degree_features, **kw)
    if model != "gcn":
        raise ConvlensError(f"--model {model!r}: node classification uses gcn (gin is for graph classification: --data mutag)")
    return train_nodes(load_node_data(data, data_dir, cache_dir, edges, label_column), out, embedding=embedding, **kw)
