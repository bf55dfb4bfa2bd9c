"""CIFAR-10 on this machine: the fast recipe end to end, and the engine's overhead on ResNet-20.

    flock /tmp/convlens-cpu.lock python benchmarks/cifar10.py                 # both parts
    python benchmarks/cifar10.py --only peak,throughput                        # minutes, not half an hour
    python benchmarks/cifar10.py --only fast --epochs 2 --limit-train 10000   # a short rehearsal

Printed, each measured in this run:

* ``peak``: the hardware line, the bf16 matmul peak and what the fast recipe's convolutions
  reach on their own (one fwd+bwd+step of a 1024-image batch, best of 3): the ceiling;
* ``fast``: ``convlens train --recipe fast`` (the whole call: data from the cache, whitening,
  training, 6-view TTA evaluation): test accuracy, wall time, images/s, GFLOP/s reached
  (training FLOPs = 3 x 2 x multiply-adds per image) and its share of the ceiling; target
  >= 91.25% (ResNet-20's published accuracy) in <= 30 minutes, stretch 93%;
* ``throughput``: ResNet-20 trained for one epoch through the engine (Lightning, He recipe)
  and by a bare PyTorch loop doing the same work (same batches, preprocessing, bf16 autocast,
  SGD); target: the engine within 5% of the bare loop.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch


def train_flops_per_image(model: torch.nn.Module) -> float:
    """Training FLOPs of one image: forward multiply-adds x 2 (FLOPs) x 3 (forward + backward)."""
    from convlens.shapes.table import model_table

    return 6.0 * model_table(model, check=False).totals["macs"]


def conv_peak(widths: str, batch: int = 1024) -> float:
    """GFLOP/s of the fast model's own training step on random data (bf16 autocast): the ceiling."""
    from convlens.models import create_model

    m = create_model("cifar_vgg", widths=widths).to(memory_format=torch.channels_last)
    flops = train_flops_per_image(m) * batch
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    best = float("inf")
    for _ in range(4):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(m(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        best = min(best, time.perf_counter() - t0)
    return flops / best / 1e9


def run_fast(args: argparse.Namespace, peak: float | None) -> None:
    from convlens.engine import TrainConfig, train
    from convlens.engine.recipes import FAST_WIDTHS
    from convlens.models import create_model

    kw = {} if args.epochs is None else {"epochs": args.epochs}
    widths = args.widths or FAST_WIDTHS
    if args.widths:
        kw["model_kwargs"] = {"widths": widths, "tta": 2}
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        res = train(TrainConfig(recipe="fast", out=out, name="fast", progress=False, limit_train=args.limit_train, **kw))
        wall = time.perf_counter() - t0
        s = res.run.summary()
    n = s["train_images"] * s["epochs"]
    ips = n / s["train_seconds"]
    gflops = train_flops_per_image(create_model("cifar_vgg", widths=widths)) * ips / 1e9
    share = f", {gflops / peak:.0%} of the measured ceiling" if peak else ""
    print(f"fast recipe (cifar_vgg widths {widths}): test accuracy {res.test_acc:.2%} (6-view TTA; {s['test_images']:,} test images) in {wall:.0f} s wall "
          f"({wall / 60:.1f} min; training {s['train_seconds']:.0f} s, {s['epochs']} epochs of {s['train_images']:,})")
    print(f"fast recipe: {ips:,.0f} training images/s, {gflops:.0f} GFLOP/s reached{share}")
    ok_acc, ok_time = res.test_acc >= 0.9125, wall <= 1800
    print(f"fast recipe: target >= 91.25% in <= 30 min: {'met' if ok_acc and ok_time else 'NOT met'}"
          f" (accuracy {'ok' if ok_acc else 'short'}, time {'ok' if ok_time else 'over'}); stretch 93%: "
          f"{'met' if res.test_acc >= 0.93 and ok_time else 'not met'}")


def bare_loop(train_images: torch.Tensor, labels: torch.Tensor, batch: int, seed: int = 0) -> float:
    """ResNet-20, one epoch, everything the engine does per step and nothing else: images/s."""
    from convlens.engine.preprocess import BatchPreprocessor
    from convlens.models import create_model

    torch.manual_seed(seed)
    m = create_model("resnet20").to(memory_format=torch.channels_last).train()
    prep = BatchPreprocessor(m.pretrained_cfg["mean"], m.pretrained_cfg["std"], "crop-flip", channels_last=True)
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, fused=True)
    order = torch.randperm(len(labels))
    t0 = time.perf_counter()
    for i in range(0, len(order), batch):
        idx = order[i:i + batch]
        x, y = prep(train_images[idx], train=True), labels[idx]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(m(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return len(order) / (time.perf_counter() - t0)


def run_throughput(args: argparse.Namespace) -> None:
    from convlens.data.registry import load_dataset
    from convlens.engine import TrainConfig, train

    n = args.throughput_images
    data = load_dataset("cifar10")
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(data.train), generator=g)[:n]
    # alternate the two (engine, bare, engine, bare) and keep each one's best: load changes slowly
    eng, bare = [], []
    for rep in range(2):
        with tempfile.TemporaryDirectory() as out:
            res = train(TrainConfig(model="resnet20", epochs=1, limit_train=n, limit_test=500, val_size=0, out=out,
                                    name="rn20", progress=False, precision="bf16-mixed"), report=False)
            eng.append(res.history[0]["images_per_s"])
        bare.append(bare_loop(data.train.images[idx], data.train.labels[idx], 128, seed=rep))
    e, b = max(eng), max(bare)
    print(f"ResNet-20 training, one epoch of {n:,} images, batch 128, bf16: engine {e:,.0f} img/s, bare PyTorch loop "
          f"{b:,.0f} img/s (runs: engine {', '.join(f'{v:.0f}' for v in eng)}; bare {', '.join(f'{v:.0f}' for v in bare)})")
    print(f"ResNet-20: engine / bare = {e / b:.3f} (target >= 0.95: {'met' if e / b >= 0.95 else 'NOT met'})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="peak,fast,throughput", help="comma-separated parts: peak, fast, throughput")
    ap.add_argument("--epochs", type=int, default=None, help="fast: epochs (default: the recipe's)")
    ap.add_argument("--widths", default=None, help="fast: cifar_vgg widths, e.g. 64,256,256 (airbench94's; default the recipe's)")
    ap.add_argument("--limit-train", type=int, default=None, help="fast: train on N images (a rehearsal)")
    ap.add_argument("--throughput-images", type=int, default=5000)
    args = ap.parse_args()
    parts = set(args.only.split(","))
    from convlens._runtime import set_threads
    from convlens.engine.recipes import FAST_WIDTHS
    from convlens.hardware import hardware_line, matmul_peak_gflops

    set_threads(int(os.environ.get("CONVLENS_THREADS", os.cpu_count() or 1)))
    print(hardware_line("bf16-mixed"), flush=True)
    peak = None
    if "peak" in parts or "fast" in parts:
        print(f"bf16 matmul peak: {matmul_peak_gflops('bfloat16'):.0f} GFLOP/s", flush=True)
        peak = conv_peak(FAST_WIDTHS)
        print(f"fast recipe's network ({FAST_WIDTHS}), one training step on 1024 images: {peak:.0f} GFLOP/s (the ceiling)", flush=True)
    if "fast" in parts:
        run_fast(args, peak)
    if "throughput" in parts:
        run_throughput(args)


if __name__ == "__main__":
    main()
