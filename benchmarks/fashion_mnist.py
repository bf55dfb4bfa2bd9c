"""Fashion-MNIST: convlens' engine against the chapter's own training loop, in one process.

    .venv/bin/python benchmarks/fashion_mnist.py                 # dnn + cnn + best recipe (~25 min)
    .venv/bin/python benchmarks/fashion_mnist.py --only dnn,cnn  # the chapter's two models
    .venv/bin/python benchmarks/fashion_mnist.py --only best     # convlens' best recipe alone

The chapter's loop is reproduced as written (section 5.2), minus its periodic evaluation: the
"one evaluation at the end" column of issue #2 — torchvision's FashionMNIST with a per-image
``ToTensor`` transform, a non-shuffling DataLoader with batch 100, Adam 1e-3, 5 epochs, the
model in train mode throughout, then one clean evaluation on the 10k test images.
convlens trains the same model with the same recipe on the same 60k images (``--val-size 0``),
and prints accuracy, wall time, images/s and the speed-up.
"""
from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn

from convlens._runtime import set_threads, tune_allocator
from convlens.data.fashion_mnist import find_fashion_mnist
from convlens.engine import TrainConfig, train
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


def convlens_run(model: str, epochs: int, out: Path, **kw) -> dict:
    t0 = time.perf_counter()
    cfg = TrainConfig(model=model, epochs=epochs, batch_size=kw.pop("batch_size", 100), lr=kw.pop("lr", 1e-3),
                      val_size=kw.pop("val_size", 0), out=str(out), name=kw.pop("name", model), progress=False, **kw)
    res = train(cfg, report=False)
    wall = time.perf_counter() - t0
    s = res.run.summary()
    return {"acc": res.test_acc, "wall_s": wall, "images_per_s": s["train_images"] * s["epochs"] / s["train_seconds"]}


BEST = dict(model="fashion_vgg", epochs=13, batch_size=256, lr=6e-3, optimizer="adamw", weight_decay=5e-4,
            scheduler="onecycle", augment="crop-flip", label_smoothing=0.1, name="best")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="dnn,cnn,best")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    tune_allocator()
    set_threads()
    raw = find_fashion_mnist()
    out = Path(tempfile.mkdtemp(prefix="convlens-bench-"))
    rows = []
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    for name in args.only.split(","):
        if name == "best":
            ours = convlens_run(**{**BEST, "epochs": BEST["epochs"]}, out=out)
            rows.append({"model": "fashion_vgg (best recipe)", "convlens": ours})
            print(f"best recipe {BEST}: test accuracy {ours['acc']:.2%} in {ours['wall_s']:.0f} s "
                  f"({ours['images_per_s']:.0f} images/s); target >= 93.0% in <= 600 s", flush=True)
            continue
        ref = chapter_loop(name, raw, args.epochs)
        print(f"{name} chapter loop: {ref['acc']:.2%} in {ref['wall_s']:.0f} s ({ref['images_per_s']:.0f} images/s)", flush=True)
        ours = convlens_run(name, args.epochs, out)
        print(f"{name} convlens    : {ours['acc']:.2%} in {ours['wall_s']:.0f} s ({ours['images_per_s']:.0f} images/s) "
              f"-> {ref['wall_s'] / ours['wall_s']:.2f}x faster", flush=True)
        rows.append({"model": name, "chapter": ref, "convlens": ours, "speedup": ref["wall_s"] / ours["wall_s"]})
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
