"""Fashion-MNIST: convlens' engine against the chapter's own training loop, in one process.

    .venv/bin/python benchmarks/fashion_mnist.py                 # dnn + cnn + best recipe (~25 min)
    .venv/bin/python benchmarks/fashion_mnist.py --only dnn,cnn  # the chapter's two models
    .venv/bin/python benchmarks/fashion_mnist.py --only best     # convlens' best recipe alone
    .venv/bin/python benchmarks/fashion_mnist.py --only fast     # airbench's recipe (convlens train --recipe fast) on Fashion-MNIST
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \
      .venv/bin/python benchmarks/fashion_mnist.py --only cnn --reference tuned --compile no,yes  # AVX2, eager and compiled
    .venv/bin/python benchmarks/fashion_mnist.py --only cnn --reference tuned --convlens-epochs 2   # time to the chapter's accuracy

The chapter's loop is reproduced as written (section 5.2), minus its periodic evaluation: the
"one evaluation at the end" column of issue #2 — torchvision's FashionMNIST with a per-image
``ToTensor`` transform, a non-shuffling DataLoader with batch 100, Adam 1e-3, 5 epochs, the
model in train mode throughout, then one clean evaluation on the 10k test images.
It runs twice: "as written" in a child process with glibc's default allocator (how a reader
of the chapter runs it), and "tuned" in this process after convlens' allocator tuning (the
chapter's loop given convlens' one process-wide fix). convlens trains the same model with
the same recipe on the same 60k images (``--val-size 0``), also testing once, at the end
(``--no-test-every-epoch``), and prints accuracy, wall time, images/s and the speed-up over both.
"""
from __future__ import annotations

import argparse
import gzip
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from convlens._runtime import set_threads, tune_allocator
from convlens.data.fashion_mnist import find_fashion_mnist
from convlens.engine import TrainConfig, train
from convlens.engine.recipes import FAST_FASHION, FAST_WIDTHS
from convlens.hardware import forward_flops, hardware_line, last_peak, share_of_peak
from convlens.models import create_model


def chapter_loop(model_name: str, raw_dir: Path, epochs: int = 5, seed: int = 0) -> dict:
    """The chapter's training loop, faithfully (its model: FashionDNN / FashionCNN as printed)."""
    import torchvision
    from torchvision import transforms

    torch.manual_seed(seed)
    root = Path(tempfile.mkdtemp(prefix="fmnist-"))
    (root / "FashionMNIST" / "raw").mkdir(parents=True)
    for f in raw_dir.glob("*ubyte*"):  # torchvision wants the un-gzipped files in <root>/FashionMNIST/raw
        dst = root / "FashionMNIST" / "raw" / f.name.removesuffix(".gz")
        with (gzip.open(f) if f.suffix == ".gz" else open(f, "rb")) as src, open(dst, "wb") as out:
            shutil.copyfileobj(src, out)
    train_set = torchvision.datasets.FashionMNIST(str(root), train=True, download=False, transform=transforms.ToTensor())
    test_set = torchvision.datasets.FashionMNIST(str(root), train=False, download=False, transform=transforms.ToTensor())
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=100)  # no shuffle, as written
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=100)
    model = create_model("dnn" if model_name == "dnn" else "cnn_chapter")
    error = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    model.train()
    for _ in range(epochs):
        for images, labels in train_loader:
            outputs = model(images.view(100, 1, 28, 28))
            loss = error(outputs, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    train_s = time.perf_counter() - t0
    model.eval()
    correct = 0
    with torch.no_grad():
        for images, labels in test_loader:
            correct += (model(images.view(-1, 1, 28, 28)).argmax(1) == labels).sum().item()
    wall = time.perf_counter() - t0
    shutil.rmtree(root, ignore_errors=True)
    return {"acc": correct / len(test_set), "wall_s": wall, "images_per_s": epochs * len(train_set) / train_s}


def chapter_loop_as_written(model_name: str, epochs: int) -> dict:
    """The chapter's loop in a fresh process with glibc's default allocator."""
    out = subprocess.run([sys.executable, __file__, "--chapter-child", model_name, "--epochs", str(epochs)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def convlens_run(model: str, epochs: int, out: Path, **kw) -> dict:
    cfg = TrainConfig(model=model, epochs=epochs, batch_size=kw.pop("batch_size", 100), lr=kw.pop("lr", 1e-3),
                      val_size=kw.pop("val_size", 0), out=str(out), name=kw.pop("name", model), progress=False,
                      test_every_epoch=False, **kw)  # one evaluation at the end, as the chapter's loop
    return measured_run(cfg)


def measured_run(cfg: TrainConfig) -> dict:
    """Train ``cfg`` (no report) and return accuracy, wall time, training images/s and share of the peak."""
    t0 = time.perf_counter()
    res = train(cfg, report=False)
    for r in res.history:
        test = f"test {r['test_acc']:.2%}, " if "test_acc" in r else ""
        print(f"  epoch {r['epoch']}: {test}{r.get('images_per_s')} images/s", flush=True)
    wall = time.perf_counter() - t0
    s = res.run.summary()
    flops = 3 * forward_flops(res.model) * s["train_images"] * s["epochs"]  # training: 3x the forward pass
    share = share_of_peak(flops, s["train_seconds"], last_peak(remeasure=True))
    print(f"  training: {share} ({s.get('precision')})", flush=True)
    return {"acc": res.test_acc, "wall_s": wall, "images_per_s": s["train_images"] * s["epochs"] / s["train_seconds"],
            "precision": s.get("precision"), "share_of_peak": share}


BEST = dict(model="fashion_vgg", model_kwargs={"width": 48, "flip_tta": True}, epochs=11, batch_size=256, lr=6e-3,
            optimizer="adamw", weight_decay=5e-4, scheduler="onecycle", augment="crop-flip", label_smoothing=0.1, name="best")


FAST_EPOCHS = FAST_FASHION["epochs"]  # --only fast: the fewest with >= 93% and a margin (docs/speed.md, part 2b)


def fast_recipe_run(epochs: int, out: Path, widths: str | None = None, **kw) -> dict:
    """``convlens train --recipe fast --data fashion-mnist --epochs N --no-test-every-epoch``: the
    airbench-style net and training of ``--recipe fast`` (engine/recipes.py), on Fashion-MNIST, at the
    recipe's Fashion-MNIST widths or at ``widths``."""
    name, explicit = "fast", ("data", "epochs")
    if widths:
        kw["model_kwargs"] = {**FAST_FASHION["model_kwargs"], "widths": widths}
        name, explicit = "fast-" + widths.replace(",", "-"), explicit + ("model_kwargs",)
    return measured_run(TrainConfig(recipe="fast", data="fashion-mnist", epochs=epochs, out=str(out), name=name,
                                    progress=False, test_every_epoch=False, explicit=explicit, **kw))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="dnn,cnn,best")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--convlens-epochs", type=int, default=None,
                    help="train convlens' dnn/cnn this many epochs (default --epochs): time to the chapter's accuracy")
    ap.add_argument("--best-epochs", type=int, default=None, help="train the best recipe this many epochs (default 11)")
    ap.add_argument("--best-width", type=int, default=None, help="the best recipe's fashion_vgg width (default 48)")
    ap.add_argument("--fast-epochs", type=int, default=FAST_EPOCHS, help=f"epochs of --only fast (default {FAST_EPOCHS})")
    ap.add_argument("--fast-reference", default=FAST_WIDTHS,
                    help=f"--only fast also trains these widths, the same epochs, as the reference (default airbench93's "
                         f"{FAST_WIDTHS}, the recipe's Fashion-MNIST widths before 2026-12-07; 'none': skip)")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--reference", default="both", choices=["both", "as-written", "tuned"],
                    help="which run(s) of the chapter's loop to compare with (default both)")
    ap.add_argument("--precision", default=None, choices=["auto", "32-true", "bf16-mixed"],
                    help="convlens' precision (default: the engine's auto = bf16-mixed only on CPUs with native bf16)")
    ap.add_argument("--compile", default="no", help="convlens' --compile: no, yes, or both runs: no,yes")
    ap.add_argument("--pairs", type=int, default=1,
                    help="dnn/cnn: measure the chapter's loop and convlens this many times, alternating which goes first, "
                         "and print the median ratio (whole runs on the project's machines drift 10-30%% within an hour)")
    ap.add_argument("--chapter-child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.chapter_child:  # the child of chapter_loop_as_written: no allocator tuning here
        set_threads()
        print(json.dumps(chapter_loop(args.chapter_child, find_fashion_mnist(), args.epochs)))
        return 0
    tune_allocator()
    set_threads()
    raw = find_fashion_mnist()
    out = Path(tempfile.mkdtemp(prefix="convlens-bench-"))
    rows = []
    extra = {"precision": args.precision} if args.precision else {}
    from convlens._runtime import resolve_precision

    prec = resolve_precision(TrainConfig().precision if args.precision is None else args.precision, torch.device("cpu"))
    print(f"torch {torch.__version__}; {hardware_line(prec)}", flush=True)
    for name in args.only.split(","):
        if name == "best":
            for comp in args.compile.split(","):
                recipe = {**BEST, "epochs": args.best_epochs or BEST["epochs"], "name": f"best-{comp}"}
                if args.best_width:
                    recipe["model_kwargs"] = {**BEST["model_kwargs"], "width": args.best_width}
                ours = convlens_run(**recipe, out=out, compile=comp == "yes", **extra)
                rows.append({"model": "fashion_vgg (best recipe)", "compile": comp, "convlens": ours})
                print(f"best recipe {recipe} (compile {comp}): test accuracy "
                      f"{ours['acc']:.2%} in {ours['wall_s']:.0f} s ({ours['images_per_s']:.0f} images/s); "
                      f"target >= 93.0% in <= 600 s", flush=True)
            continue
        if name == "fast":
            runs = {f"widths {FAST_FASHION['model_kwargs']['widths']}": None}
            if args.fast_reference != "none":
                runs[f"widths {args.fast_reference}"] = args.fast_reference
            results = {}
            for label, widths in runs.items():
                ours = results[label] = fast_recipe_run(args.fast_epochs, out, widths, **extra)
                rows.append({"model": f"cifar_vgg (--recipe fast, {label})", "convlens": ours})
                print(f"fast recipe, {label}, {args.fast_epochs} epochs ({ours['precision']}): test accuracy {ours['acc']:.2%} "
                      f"in {ours['wall_s']:.0f} s ({ours['images_per_s']:.0f} images/s, {ours['share_of_peak']}); "
                      f"target >= 93.0% in <= 600 s", flush=True)
            if len(results) == 2:
                new, ref = results.values()
                print(f"fast recipe: the default {ref['wall_s'] / new['wall_s']:.2f}x sooner than the reference widths, "
                      f"{(new['acc'] - ref['acc']) * 100:+.2f} points", flush=True)
            continue
        def chapter_refs() -> dict[str, dict]:
            refs = {}
            if args.reference in ("both", "as-written"):
                refs["as written"] = chapter_loop_as_written(name, args.epochs)
            if args.reference in ("both", "tuned"):
                refs["allocator tuned"] = chapter_loop(name, raw, args.epochs)
            return refs

        def convlens_runs(pair: int) -> list[dict]:
            return [convlens_run(name, args.convlens_epochs or args.epochs, out, compile=comp == "yes",
                                 name=f"{name}-{comp}-{pair}", **extra) for comp in args.compile.split(",")]

        pair_ratios: dict[str, list[float]] = {}
        for pair in range(args.pairs):
            # odd pairs run convlens first, so a machine that drifts during a pair does not favour one side
            if pair % 2:
                ours_runs = convlens_runs(pair)
                refs = chapter_refs()
            else:
                refs = chapter_refs()
                ours_runs = convlens_runs(pair)
            for label, ref in refs.items():
                print(f"{name} chapter loop ({label}): {ref['acc']:.2%} in {ref['wall_s']:.1f} s ({ref['images_per_s']:.0f} images/s)", flush=True)
            for comp, ours in zip(args.compile.split(","), ours_runs):
                ratios = {label: ref["wall_s"] / ours["wall_s"] for label, ref in refs.items()}
                for label, r in ratios.items():
                    pair_ratios.setdefault(f"compile {comp}, {label}", []).append(r)
                if args.convlens_epochs:
                    worse = [label for label, ref in refs.items() if ours["acc"] < ref["acc"]]
                    print(f"{name}: convlens {args.convlens_epochs} epochs against the chapter's {args.epochs}: accuracy "
                          + (f"BELOW the chapter loop ({', '.join(worse)}): the ratio below is not a like-for-like one" if worse
                             else "at or above the chapter loop's"), flush=True)
                print(f"{name} convlens (compile {comp}, {ours['precision']}): {ours['acc']:.2%} in {ours['wall_s']:.1f} s "
                      f"({ours['images_per_s']:.0f} images/s) -> "
                      + ", ".join(f"{r:.2f}x faster than the chapter's loop {label}" for label, r in ratios.items()), flush=True)
                rows.append({"model": name, "compile": comp, "chapter": refs, "convlens": ours, "speedup": ratios, "pair": pair})
        if args.pairs > 1:
            for label, rs in pair_ratios.items():
                print(f"{name}, {label}: median {statistics.median(rs):.2f}x over {len(rs)} pairs "
                      f"({', '.join(f'{r:.2f}' for r in rs)})", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
