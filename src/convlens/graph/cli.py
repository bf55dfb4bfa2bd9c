"""``convlens graph show ...`` and ``convlens graph train ...`` (handlers import lazily)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .. import argtypes as A


_DATA_KEYS = ("data_dir", "cache_dir", "edges", "label_column")  # the flags _data_args adds


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="folder with the raw files (Planetoid ind.<name>.*, or MUTAG_*.txt); "
                                      "default: the project's shared data, else download")
    p.add_argument("--cache-dir", help="where processed data sets are written (default ~/.cache/convlens or $CONVLENS_CACHE)")
    p.add_argument("--edges", help="edges CSV (src,dst[,type]) when DATA is a nodes CSV (id,features...,label)")
    p.add_argument("--label-column", default="label", help="class column of the nodes CSV (default label)")


def register(subparsers) -> None:
    p = subparsers.add_parser("graph", help="graph convolutional networks: matrices, node and graph classification",
                              description="Graph convolutional networks on karate, Cora, Citeseer, MUTAG or your CSVs.")
    sub = p.add_subparsers(dest="graph_command", metavar="{show,train}")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    s = sub.add_parser("show", help="print and draw A, degrees, Â = D^-1/2 (A+I) D^-1/2 and X")
    s.add_argument("data", help="karate | cora | citeseer | mutag | nodes.csv (with --edges)")
    s.add_argument("--index", type=A.non_negative_int, help="which molecule of mutag (default 0)")
    s.add_argument("--out", type=A.output_dir, help="folder for matrices.png and graph.png (default graph-show-<data>)")
    s.add_argument("--no-plots", action="store_true", help="only print")
    s.add_argument("--max-print", type=A.non_negative_int, default=40, help="print full matrices up to this many nodes (default 40)")
    _data_args(s)
    s.set_defaults(func=_show)

    t = sub.add_parser("train", help="node classification (karate, cora, citeseer, CSV) or 10-fold graph classification (mutag)")
    t.add_argument("--data", default="cora", help="karate | cora | citeseer | mutag | nodes.csv (with --edges)")
    t.add_argument("--model", default="gcn", choices=["gcn", "gin"], help="gin: graph classification only")
    t.add_argument("--readout", default=None, choices=["mean", "sum", "max"], help="graph readout (default: mean for gcn, sum for gin)")
    t.add_argument("--folds", type=A.at_least(2), default=10)
    t.add_argument("--epochs", type=A.positive_int)
    t.add_argument("--hidden", type=A.positive_int)
    t.add_argument("--layers", type=A.positive_int)
    t.add_argument("--lr", type=A.finite_positive_float)
    t.add_argument("--dropout", type=A.probability)
    t.add_argument("--no-edge-attr", action="store_true", help="mutag: ignore bond types")
    t.add_argument("--degree-features", type=A.non_negative_int, help="mutag: append one-hot degree 0..K to the atom type (default 4; 0 = off)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--embedding", default="auto", choices=["auto", "tsne", "pca"])
    t.add_argument("--threads", type=A.positive_int)
    t.add_argument("--out", type=A.output_dir, help="run folder (default runs/graph-<data>-<model>-<time>)")
    _data_args(t)
    t.set_defaults(func=_train)


def _show(args) -> int:
    from .show import show_graph

    out = None if args.no_plots else (args.out or f"graph-show-{Path(args.data).stem.lower()}")
    res = show_graph(args.data, index=args.index, out=out, max_print=args.max_print, **{k: getattr(args, k) for k in _DATA_KEYS})
    print(res["text"])
    for f in res["files"]:
        print(f"wrote {f}")
    return 0


def _train(args) -> int:
    from .pipeline import train

    keys = _DATA_KEYS + ("data", "model", "out", "seed", "folds", "embedding", "threads", "epochs", "hidden", "lr", "dropout",
                         "layers", "degree_features")
    s = train(readout=args.readout or ("sum" if args.model == "gin" else "mean"), use_edge_attr=not args.no_edge_attr,
              **{k: getattr(args, k) for k in keys})
    if s["task"] == "node":
        how = (f"epoch {s['best_epoch']} by validation; last epoch {s['final_test_acc']:.1%}" if s["num_val"]
               else "last epoch; no validation nodes")
        print(f"{s['data']}: test accuracy {s['test_acc']:.1%} on {s['num_test']} test nodes ({how}), {s['train_seconds']:.1f} s")
    else:
        print(f"mutag {s['model']}+{s['readout']}: {len(s['fold_acc'])}-fold CV {s['cv_mean_acc']:.1%} ± {s['cv_std_acc']:.1%} "
              f"(GIN protocol {s['gin_protocol_mean_acc']:.1%} @ epoch {s['gin_protocol_epoch']}), {s['seconds']:.0f} s")
    print(f"run folder: {s['run']}  (report.html)")
    return 0
