"""Transfer learning: convlens vs the chapter's loop, measured in the same run.

Run under the machine's CPU lock (2 shared cores)::

    flock /tmp/convlens-cpu.lock .venv/bin/python benchmarks/transfer.py

What it measures (EfficientNet-Lite0, ImageNet weights, frozen):

1. the chapter's loop as written (torchvision ImageFolder, Resize 256x256 + RandomResizedCrop
   224 + flip, no normalisation, batch 32, Adam on the head, the "frozen" backbone in train
   mode, every epoch saved and then every checkpoint evaluated on test). It is timed for
   ``--chapter-epochs`` epochs and one checkpoint evaluation and extrapolated to 13 of each
   (the per-epoch cost is flat: the same images through the same network every epoch);
2. ``convlens transfer --strategy feature-extract`` as a whole command (a fresh process,
   imports included) with an empty feature cache, then again with the cache warm;
3. Fashion-MNIST (a few hundred images resized to 224, grey -> 3 channels: dissimilar to
   ImageNet): feature extraction vs ``--strategy auto`` (which measures the data and chooses
   fine-tuning), same train/test images.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CONVLENS_SHARED_DATA", REPO.parent / "shared" / "data")) / "catanddog"


def chapter_loop(epochs: int, threads: int) -> dict[str, float]:
    """The chapter's feature-extraction loop with EfficientNet-Lite0 in place of ResNet18."""
    import torch
    import torchvision
    from torchvision import transforms

    from convlens._runtime import tune_allocator
    from convlens.models import create_model

    tune_allocator()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    tf = transforms.Compose([transforms.Resize([256, 256]), transforms.RandomResizedCrop(224),
                             transforms.RandomHorizontalFlip(), transforms.ToTensor()])  # no normalisation: as written
    train_ds = torchvision.datasets.ImageFolder(str(DATA / "train"), transform=tf)
    test_ds = torchvision.datasets.ImageFolder(str(DATA / "test"), transform=tf)
    train_loader = torch.utils.data.DataLoader(train_ds, batch_size=32, num_workers=0, shuffle=True)
    test_loader = torch.utils.data.DataLoader(test_ds, batch_size=32, num_workers=0, shuffle=True)
    model = create_model("efficientnet_lite0", pretrained=True)
    for p in model.parameters():
        p.requires_grad = False
    model.classifier = torch.nn.Linear(1280, 2)
    opt = torch.optim.Adam(model.classifier.parameters())
    loss_fn = torch.nn.CrossEntropyLoss()
    ckdir = Path(tempfile.mkdtemp(prefix="chapter-ckpt-"))
    epoch_s = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        model.train()  # as written: the frozen backbone's BatchNorm keeps updating
        for x, y in train_loader:
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
        torch.save(model.state_dict(), ckdir / f"{epoch:02d}.pth")
        epoch_s.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    model.load_state_dict(torch.load(ckdir / "00.pth", weights_only=True))
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in test_loader:
            correct += int((model(x).argmax(1) == y).sum())
    eval_s = time.perf_counter() - t0
    per_epoch = sum(epoch_s) / len(epoch_s)
    return {"epoch_s": per_epoch, "eval_s": eval_s, "total_13_s": 13 * (per_epoch + eval_s), "epochs_timed": epochs,
            "images_per_s": len(train_ds) / per_epoch, "test_acc_after_1_epoch": correct / len(test_ds)}


def convlens_cmd(args: list[str]) -> tuple[float, dict]:
    """Run ``convlens transfer ...`` in a fresh process; (wall seconds, summary.json)."""
    cmd = [sys.executable, "-m", "convlens.transfer.cli", "transfer", "--no-progress", *args]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    sys.stderr.write(out.stderr[-1500:])
    run = Path(args[args.index("--out") + 1]) / args[args.index("--name") + 1]
    return wall, json.loads((run / "summary.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chapter-epochs", type=int, default=2, help="epochs of the chapter's loop actually timed")
    ap.add_argument("--fashion-train", type=int, default=300)
    ap.add_argument("--fashion-test", type=int, default=300)
    ap.add_argument("--fashion-epochs", type=int, default=4)
    ap.add_argument("--fashion-size", type=int, default=224, help="backbone input size for Fashion-MNIST (28-px images)")
    ap.add_argument("--skip-fashion", action="store_true")
    ap.add_argument("--only-fashion", action="store_true", help="only part 3 (Fashion-MNIST)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    os.environ["CONVLENS_THREADS"] = str(a.threads)
    import torch

    from convlens.hardware import hardware_line

    torch.set_num_threads(a.threads)
    print(hardware_line(), flush=True)
    work = Path(tempfile.mkdtemp(prefix="convlens-bench-transfer-"))
    cache, out = str(work / "cache"), str(work / "runs")
    rows = []
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch, timm, matplotlib.pyplot"], check=True)
    floor = time.perf_counter() - t0
    print(f"import floor (a fresh python importing torch, timm, matplotlib): {floor:.1f} s")
    rows.append(("python -c 'import torch, timm, matplotlib.pyplot'", f"{floor:.1f} s", "floor of any command", "-"))

    if not a.only_fashion:
        rows += catdog(a, cache, out)
    if not a.skip_fashion:
        rows += fashion(a, cache, out)
    print("\n| figure | value | reference (same run) | ratio |\n|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(f"\nrun folders: {out}")


def catdog(a: argparse.Namespace, cache: str, out: str) -> list[tuple[str, ...]]:
    ch = chapter_loop(a.chapter_epochs, a.threads)
    print(f"chapter loop: {ch['epoch_s']:.1f} s/epoch ({ch['images_per_s']:.1f} images/s), {ch['eval_s']:.1f} s per checkpoint "
          f"evaluation; 13 epochs + 13 evaluations = {ch['total_13_s']:.0f} s (extrapolated from {a.chapter_epochs} epoch(s))")

    base = ["--data", str(DATA), "--backbone", "efficientnet_lite0", "--strategy", "feature-extract", "--cache-dir", cache, "--out", out]
    cold_s, cold = convlens_cmd(base + ["--name", "cold"])
    warm_s, warm = convlens_cmd(base + ["--name", "warm"])
    from convlens.hardware import forward_flops, last_peak, share_of_peak
    from convlens.models import create_model

    flops = forward_flops(create_model("efficientnet_lite0"), (3, 224, 224), train=False)
    print(f"convlens feature-extract, empty cache: {cold_s:.1f} s, test accuracy {cold['test_acc']:.2%} "
          f"(features {cold['features_seconds']:.1f} s for {cold['features_computed']} images: "
          f"{share_of_peak(flops * cold['features_computed'], cold['features_seconds'], last_peak())}, decoding included)")
    print(f"convlens feature-extract, warm cache: {warm_s:.1f} s, test accuracy {warm['test_acc']:.2%} "
          f"({warm['features_cached']} features from the cache)")
    return [("cat/dog feature-extract test accuracy", f"{cold['test_acc']:.2%}", "97% target (chapter: 93.9% ResNet18)",
              f"{cold['test_acc'] / 0.97:.3f}x"),
             ("cat/dog whole command, empty cache", f"{cold_s:.1f} s", f"chapter loop 13 epochs {ch['total_13_s']:.0f} s",
              f"{ch['total_13_s'] / cold_s:.1f}x faster"),
             ("cat/dog whole command, warm cache", f"{warm_s:.1f} s", f"chapter loop {ch['total_13_s']:.0f} s",
              f"{ch['total_13_s'] / warm_s:.1f}x faster")]


def fashion(a: argparse.Namespace, cache: str, out: str) -> list[tuple[str, ...]]:
    fm = ["--data", "fashion-mnist", "--limit-train", str(a.fashion_train), "--limit-test", str(a.fashion_test),
          "--cache-dir", cache, "--out", out, "--image-size", str(a.fashion_size)]
    fe_s, fe = convlens_cmd(fm + ["--strategy", "feature-extract", "--name", "fashion-fe"])
    ft_s, ft = convlens_cmd(fm + ["--strategy", "auto", "--epochs", str(a.fashion_epochs), "--name", "fashion-auto"])
    auto = ft.get("auto") or {}
    print(f"fashion-mnist ({a.fashion_train} train / {a.fashion_test} test at {a.fashion_size}): feature-extract {fe['test_acc']:.2%} "
          f"in {fe_s:.0f} s; auto -> {ft['strategy']} (unfreeze {ft.get('unfreeze')}) {ft['test_acc']:.2%} in {ft_s:.0f} s; "
          f"probe {auto.get('probe_acc', float('nan')):.1%} rescaled {auto.get('probe_score', float('nan')):.2f}, "
          f"LogME {auto.get('logme', float('nan')):.3f}")
    return [(f"fashion-mnist {a.fashion_train} imgs at {a.fashion_size} px, {a.fashion_epochs} epochs: auto ({ft['strategy']}) vs feature-extract test accuracy",
             f"{ft['test_acc']:.2%}", f"feature-extract {fe['test_acc']:.2%}", f"{ft['test_acc'] - fe['test_acc']:+.2%} points")]


if __name__ == "__main__":
    main()
