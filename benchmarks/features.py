"""Frozen-backbone feature extraction: PyTorch eager (convlens before issue 15) against the
fast path of ``convlens.transfer.fast`` (ONNX Runtime), same images, same process.

    flock /tmp/convlens-cpu.lock .venv/bin/python benchmarks/features.py
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 flock /tmp/convlens-cpu.lock .venv/bin/python benchmarks/features.py

EfficientNet-Lite0 (ImageNet weights) on the cat/dog photos (decoded and resized once, not
timed: both paths share that step). Each engine computes the features of every image in
batches of 32; the passes alternate (eager, runtime, eager, runtime, ...) so a load change on
a shared machine hits both, and the best pass of each counts. Prints images/s, GFLOP/s as a
share of the fp32 matmul peak, the ratio, and the largest feature difference.
Note: the ISA cap binds PyTorch/oneDNN only; ONNX Runtime's MLAS picks its kernels itself.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CONVLENS_SHARED_DATA", REPO.parent / "shared" / "data")) / "catanddog"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="use the first N photos (default all train + test)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    a = ap.parse_args()
    from convlens._runtime import set_threads, tune_allocator
    from convlens.data.folders import open_image
    from convlens.hardware import forward_flops, hardware_line, last_peak, share_of_peak
    from convlens.transfer.backbones import load_backbone
    from convlens.transfer.fast import eager_runner, onnx_runner

    tune_allocator()
    set_threads()
    print(hardware_line(), flush=True)
    b = load_backbone("efficientnet_lite0", num_classes=None)
    files = sorted(p for p in DATA.rglob("*") if p.is_file())[: a.limit]
    tf = b.preprocess.transform()
    imgs = []
    for f in files:
        try:
            imgs.append(tf(open_image(f, b.preprocess.channels)))
        except Exception:  # noqa: BLE001 - the folder holds a few unreadable files on purpose
            continue
    x = torch.stack(imgs)
    flops = forward_flops(b.model, tuple(x.shape[1:]), train=False)
    t0 = time.perf_counter()
    runners = {"PyTorch eager (before)": eager_runner(b)}
    runners["ONNX Runtime (transfer/fast.py)"] = onnx_runner(b, cache_root=None)
    print(f"{len(x)} photos at {tuple(x.shape[1:])}; {flops / 1e9:.2f} GFLOP each; set-up incl. ONNX export "
          f"{time.perf_counter() - t0:.1f} s (once per backbone: cached on disk afterwards)", flush=True)
    best = {k: float("inf") for k in runners}
    out = {}
    for _ in range(a.rounds):
        for k, run in runners.items():
            t0 = time.perf_counter()
            out[k] = torch.cat([run(x[i:i + a.batch_size]) for i in range(0, len(x), a.batch_size)])
            best[k] = min(best[k], time.perf_counter() - t0)
    for k, s in best.items():
        print(f"{k:32s} {len(x) / s:6.1f} images/s ({s:.1f} s; {share_of_peak(flops * len(x), s, last_peak())})", flush=True)
    (ref, fast) = (out[k] for k in runners)
    ratio = best["PyTorch eager (before)"] / best["ONNX Runtime (transfer/fast.py)"]
    print(f"speed-up {ratio:.2f}x (target >= 2x); largest feature difference {(fast - ref).abs().max().item():.2e} "
          f"(features up to {ref.abs().max().item():.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
