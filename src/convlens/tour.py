"""``convlens tour``: the whole chapter on the data at hand, ending in one page to open.

1. Basics: the AlexNet table (62,378,344 parameters) and the convolution/pooling examples.
2. A first CNN: the chapter's DNN and CNN trained on Fashion-MNIST and compared.
3. Transfer learning: EfficientNet-Lite0's cached ImageNet features + a new head on cats/dogs.
4. Explainable CNNs: class activation map and feature maps of the chapter's cat photo, and the
   transfer run's most confidently wrong test images.
5. Graph convolutional networks: the karate club, Cora, and MUTAG molecules.

Each step writes its own run folder and report under ``--out``; ``index.html`` links them.
A step whose data is missing is reported as skipped with the reason, and the tour goes on.
"""
from __future__ import annotations

import argparse
import html
import os
import shutil
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from .errors import ConvlensError

#: the tour's steps in order: --steps name -> (title, the Tour method that runs it)
STEPS = {"basics": ("1. Basics: sizes, parameters, convolution", "basics"),
         "first-cnn": ("2. A first CNN: DNN vs CNN on Fashion-MNIST", "first_cnn"),
         "transfer": ("3. Transfer learning: cats and dogs", "transfer"),
         "explain": ("4. Explainable CNNs", "explain"),
         "graphs": ("5. Graph convolutional networks", "graphs")}


def find_shared_data(explicit: str | None = None) -> Path | None:
    """The chapter's data folder: ``--shared-data``, else :func:`~convlens._runtime.shared_data_dir`."""
    from ._runtime import shared_data_dir

    return Path(explicit) if explicit and Path(explicit).is_dir() else shared_data_dir()


class Tour:
    def __init__(self, out: Path, quick: bool, shared: Path | None, device: str):
        self.out, self.quick, self.shared, self.device = out, quick, shared, device
        self.steps: list[dict[str, Any]] = []

    def step(self, title: str, fn: Callable[[], dict[str, Any]]) -> None:
        print(f"\n=== {title} ===", flush=True)
        t0 = time.perf_counter()
        try:
            info = fn()
            status = "ok"
        except ConvlensError as exc:
            info, status = {"why": str(exc)}, "skipped"
            print(f"skipped: {exc}", flush=True)
        except Exception as exc:  # noqa: BLE001 - one failing step must not hide the others
            info, status = {"why": f"{type(exc).__name__}: {exc}"}, "failed"
            traceback.print_exc()
        info.update(title=title, status=status, seconds=round(time.perf_counter() - t0, 1))
        self.steps.append(info)

    def need_shared(self, sub: str) -> Path:
        if self.shared is None or not (self.shared / sub).exists():
            raise ConvlensError(f"the chapter's data ({sub}) is not here: pass --shared-data DIR (the folder holding catanddog/, images/, planetoid/, tu/)")
        return self.shared / sub

    # ---- the steps ------------------------------------------------------------------------
    def basics(self) -> dict[str, Any]:
        from .reports import Report
        from .shapes import alexnet_tables, plot_demo, run_demo

        tables = alexnet_tables()
        r = Report("CNN basics: sizes, parameters, convolution and pooling",
                   subtitle="W2 = (W1 - F + 2P)/S + 1 at every layer; parameters = weights + biases")
        for key in ("chapter", "torchvision"):
            t = tables[key]
            cols = [c for c in ("layer", "output", "weights", "biases", "params") if c in t["rows"][0]]
            r.heading(f"AlexNet ({key}): {t['totals']['params']:,} parameters").table(t["rows"], cols)
        for name in ("1d", "pool", "padding", "1x1", "3d"):
            res = run_demo(name)
            r.heading(f"demo: {name}").image(plot_demo(res), res.get("title", name))
        return {"report": r.write(self.out / "basics" / "report.html"),
                "result": f"AlexNet {tables['chapter']['totals']['params']:,} parameters (torchvision's variant {tables['torchvision']['totals']['params']:,})"}

    def first_cnn(self) -> dict[str, Any]:
        from .engine import TrainConfig, compare

        cfg = TrainConfig(epochs=1 if self.quick else 5, limit_train=12000 if self.quick else None,
                          val_size=2000 if self.quick else 5000, out=str(self.out), device=self.device)
        res = compare(cfg, ["dnn", "cnn"], name="fashion-mnist-dnn-vs-cnn")
        return {"report": res["folder"] / "report.html",
                "result": "test accuracy: " + ", ".join(f"{row['model']} {row['test accuracy']:.2%}" for row in res["table"])}

    def transfer(self) -> dict[str, Any]:
        from .transfer import TransferConfig, transfer

        res = transfer(TransferConfig(data=str(self.need_shared("catanddog")), strategy="feature-extract", out=str(self.out),
                                      name="transfer-catanddog", device=self.device))
        self.transfer_run = res.run.path
        return {"report": res.run.path / "report.html",
                "result": f"EfficientNet-Lite0 features + linear head: test accuracy {res.test_acc:.2%} on {res.summary.get('test_images')} images"}

    def explain(self) -> dict[str, Any]:
        from .explain import load_model, report_wrong, write_reports

        cat = self.need_shared("images/cat.jpg")
        folder = self.out / "explain"
        out = {"report": write_reports(load_model("efficientnet_lite0"), [cat], folder / "cat"),
               "result": "Grad-CAM and feature maps of cat.jpg under ImageNet EfficientNet-Lite0"}
        if getattr(self, "transfer_run", None):
            wrong = report_wrong(self.transfer_run, folder / "transfer-wrong", n=6)
            out["more"] = [(wrong, "why the cat/dog model failed: its most confidently wrong test images")]
        return out

    def graphs(self) -> dict[str, Any]:
        from .graph import train as graph_train

        planetoid = self.need_shared("planetoid/raw")
        mutag = self.need_shared("tu/MUTAG/raw")
        results, more = [], []
        for data, kw in (("karate", {}), ("cora", {"data_dir": planetoid}), ("mutag", {"data_dir": mutag, "folds": 10})):
            s = graph_train(data=data, out=self.out / f"graph-{data}", progress=True, **kw)
            results.append(f"{data} {s['cv_mean_acc']:.1%} ± {s['cv_std_acc']:.1%} (10-fold CV)" if "cv_mean_acc" in s
                           else f"{data} {s['test_acc']:.1%}")
            more.append((Path(s["run"]) / "report.html", f"GCN on {data}"))  # graph-<data>-2 when rerun into one --out
        return {"report": more[1][0], "result": "GCN: " + ", ".join(results), "more": more[::2]}

    def index(self) -> Path:
        from .reports import Report

        r = Report("convlens: the chapter on convolutional networks, on real data",
                   subtitle=f"{'quick ' if self.quick else ''}tour written to {self.out}")
        r.table([{"step": s["title"], "status": s["status"], "result": s.get("result", s.get("why", "")), "seconds": s["seconds"]}
                 for s in self.steps])
        for s in self.steps:
            r.heading(s["title"]).text(s.get("result", s.get("why", "")))
            for path, label in ([(s["report"], "open the report")] if s.get("report") else []) + s.get("more", []):
                rel = os.path.relpath(path, self.out)
                r.html(f"<p><a href='{html.escape(rel)}'>{html.escape(label)}</a> <span class='muted'>{html.escape(rel)}</span></p>")
        return r.write(self.out / "index.html")


def run_tour(out: str | os.PathLike = "runs/tour", quick: bool = False, shared_data: str | None = None,
             device: str = "auto", steps: str = ",".join(STEPS)) -> Path:
    """Run the chapter's ideas in order and return the path of ``index.html``."""
    from ._runtime import tune_allocator

    tune_allocator()
    keys = [k for k in (s.strip() for s in steps.split(",")) if k]
    if bad := [k for k in keys if k not in STEPS]:
        raise ConvlensError(f"--steps: unknown step {bad[0]!r}; choose from {', '.join(STEPS)}")
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)  # a tour is re-made whole: its folder holds nothing else
    out.mkdir(parents=True)
    tour = Tour(out, quick, find_shared_data(shared_data), device)
    for key in keys:
        title, method = STEPS[key]
        tour.step(title, getattr(tour, method))
    index = tour.index()
    print(f"\nopen {index.resolve()} in a browser")
    runs_root = Path(out).parent if Path(out).name == "tour" else Path(out)
    print(f"explore these runs, your own images, layers and graphs in the browser:\n"
          f"    convlens serve {runs_root}/    (then open http://127.0.0.1:8000)")
    if failed := [s["title"] for s in tour.steps if s["status"] == "failed"]:
        raise RuntimeError(f"tour steps failed: {', '.join(failed)} (see above)")
    return index


def _main(args: argparse.Namespace) -> int:
    run_tour(args.out, args.quick, args.shared_data, args.device, args.steps)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tour", help="the whole chapter on the data at hand, ending in index.html",
                       description="Runs basics, DNN vs CNN, transfer learning, explanations and GCNs; writes OUT/index.html.")
    p.add_argument("--out", default="runs/tour")
    p.add_argument("--quick", action="store_true", help="a few minutes: 1 epoch on a Fashion-MNIST subset")
    p.add_argument("--shared-data", default=None, help="the chapter's data folder (default ../shared/data)")
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", default=",".join(STEPS), help="comma-separated subset of the steps")
    p.set_defaults(func=_main)
