"""Fine-tuning small images: accuracy against time at several backbone input sizes (issue 15, part 5).

A pretrained backbone expects 224x224; fine-tuning 8x8 digits at 224 px pays for 784x the pixels.
This script fine-tunes EfficientNet-Lite0 (the last 2 stages, LP-FT head start) on sklearn's 8x8
digits, written once as a 32x32 image folder (400 train + 200 test, a dissimilar data set), or on
a seeded subset of Fashion-MNIST (28x28), at each ``--sizes`` value, and prints test accuracy and
wall time of each whole run, with the hardware line::

    flock /tmp/convlens-cpu.lock .venv/bin/python benchmarks/input_size.py --sizes 32,64,96,128,224
    flock /tmp/convlens-cpu.lock .venv/bin/python benchmarks/input_size.py --data fashion-mnist --sizes 64,96,128,224
    flock /tmp/convlens-cpu.lock .venv/bin/python benchmarks/input_size.py --data fashion-mnist --strategy feature-extract

Every run sees the same images, split, seed and recipe; only ``--image-size`` changes.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def digits_folder(root: Path, n_train: int, n_test: int) -> Path:
    """sklearn's 8x8 digits as ``train/<digit>/*.png`` and ``test/<digit>/*.png`` at 32x32 (nearest)."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    order = np.random.default_rng(0).permutation(len(d.images))
    for split, idx in (("train", order[:n_train]), ("test", order[n_train:n_train + n_test])):
        for i in idx:
            folder = root / split / str(d.target[i])
            folder.mkdir(parents=True, exist_ok=True)
            img = (d.images[i] * (255 / 16)).astype("uint8")
            Image.fromarray(img).resize((32, 32), Image.NEAREST).save(folder / f"{i}.png")
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="32,64,96,128,224", help="backbone input sizes in pixels")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--train", type=int, default=400)
    ap.add_argument("--test", type=int, default=200)
    ap.add_argument("--data", default="digits", choices=["digits", "fashion-mnist"])
    ap.add_argument("--strategy", default="fine-tune", choices=["fine-tune", "feature-extract"])
    args = ap.parse_args()

    from convlens.hardware import hardware_line
    from convlens.transfer import TransferConfig, transfer

    print(hardware_line("auto (bf16-mixed where native)"), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if args.data == "digits":
            data = dict(data=str(digits_folder(Path(tmp) / "digits", args.train, args.test)))
        else:
            data = dict(data="fashion-mnist", limit_train=args.train, limit_test=args.test)
        recipe = dict(strategy="fine-tune", unfreeze=2, epochs=args.epochs) if args.strategy == "fine-tune" else {}
        rows = []
        for size in [int(s) for s in args.sizes.split(",")]:
            t0 = time.perf_counter()
            res = transfer(TransferConfig(**data, **recipe, image_size=size, out=str(Path(tmp) / "runs"),
                                          name=f"{args.data}-{size}px", cache_dir=str(Path(tmp) / "cache"), progress=False),
                           log=lambda m: None)
            secs = time.perf_counter() - t0
            rows.append((size, res.test_acc, secs))
            print(f"{size:4d} px: test accuracy {res.test_acc:6.2%}  in {secs:6.1f} s "
                  f"({size * size / 224 ** 2:.3f} of 224 px's pixels)", flush=True)
    best = max(r[1] for r in rows)
    fastest_good = min((r for r in rows if r[1] >= best - 0.01), key=lambda r: r[2])
    ref = next((r for r in rows if r[0] == 224), None)
    print(f"best accuracy {best:.2%}; fastest within 1 point of it: {fastest_good[0]} px "
          f"({fastest_good[1]:.2%} in {fastest_good[2]:.1f} s)"
          + (f", {ref[2] / fastest_good[2]:.1f}x faster than 224 px ({ref[1]:.2%} in {ref[2]:.1f} s)" if ref else ""))


if __name__ == "__main__":
    main()
