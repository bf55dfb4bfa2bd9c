"""Frozen-backbone feature extraction: PyTorch eager (convlens before issue 15) against the
fast path of ``convlens.transfer.fast`` (ONNX Runtime), same images, same process.

    flock /tmp/convlens-cpu.lock .venv/bin/python benchmarks/features.py
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 flock /tmp/convlens-cpu.lock .venv/bin/python benchmarks/features.py

EfficientNet-Lite0 (ImageNet weights) on the cat/dog photos (decoded and resized once, not
timed: all paths share that step). Each path computes the features of every image, handed
over in batches of 32 as ``extract_features`` does: PyTorch eager as before issue 15 (one call
per batch), eager in chunks of ``EAGER_CHUNK`` and ONNX Runtime in chunks of ``ONNX_CHUNK``
(today's default). The passes alternate so a load change on a shared machine hits all, and
the best pass of each counts. The batch-32 eager pass runs once more in a child process with the
allocator setting of the code when issue 15 was filed (a mallopt bug: docs/speed.md), so the
ratio to the issue's "today" is measured in the same run too. Prints images/s, GFLOP/s as a
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
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--end-to-end", action="store_true",
                    help="also time extract_features (decode, resize, network; cache off): before vs today")
    ap.add_argument("--issue-time-child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    from convlens._runtime import set_threads, tune_allocator
    from convlens.data.folders import open_image
    from convlens.hardware import forward_flops, hardware_line, last_peak, share_of_peak
    from convlens.transfer.backbones import load_backbone
    from convlens.transfer.fast import EAGER_CHUNK, ONNX_CHUNK, eager_runner, onnx_runner

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
    before = "PyTorch eager, batch 32 (before)"
    runners = {before: eager_runner(b, chunk=None),
               f"PyTorch eager, chunks of {EAGER_CHUNK}": eager_runner(b),
               f"ONNX Runtime, chunks of {ONNX_CHUNK}": onnx_runner(b, cache_root=None)}
    if a.issue_time_child:
        runners = {before: runners[before]}
    print(f"{len(x)} photos at {tuple(x.shape[1:])}; {flops / 1e9:.2f} GFLOP each; set-up incl. ONNX export "
          f"{time.perf_counter() - t0:.1f} s (once per backbone: cached on disk afterwards)", flush=True)
    best = {k: float("inf") for k in runners}
    out = {}
    for _ in range(a.rounds):
        for k, run in runners.items():
            t0 = time.perf_counter()
            out[k] = torch.cat([run(x[i:i + a.batch_size]) for i in range(0, len(x), a.batch_size)])
            best[k] = min(best[k], time.perf_counter() - t0)
    if a.issue_time_child:
        print(best[before])
        return 0
    for k, s in best.items():
        print(f"{k:36s} {len(x) / s:6.1f} images/s ({s:.1f} s; {share_of_peak(flops * len(x), s, last_peak())})", flush=True)
    t_issue = issue_time_eager(sys.argv[1:])
    print(f"{'PyTorch eager, batch 32, issue-time':36s} {len(x) / t_issue:6.1f} images/s ({t_issue:.1f} s; child process with "
          f"the allocator setting convlens had when issue 15 was filed)", flush=True)
    (ref, eager, fast) = (out[k] for k in runners)
    (t_before, t_eager, t_fast) = best.values()
    print(f"speed-up over the code when issue 15 was filed: {t_issue / t_fast:.2f}x (target >= 2x); of which the allocator "
          f"fix {t_issue / t_before:.2f}x (it speeds up every path) and ONNX Runtime {t_before / t_fast:.2f}x")
    print(f"speed-up over the eager path before issue 15, both with today's allocator: {t_before / t_fast:.2f}x; "
          f"over eager in chunks of {EAGER_CHUNK}: {t_eager / t_fast:.2f}x; eager chunked vs before: {t_before / t_eager:.2f}x")
    print(f"largest feature difference from the batch-32 eager features: ONNX Runtime {(fast - ref).abs().max().item():.2e}, "
          f"eager chunked {(eager - ref).abs().max().item():.2e} (features up to {ref.abs().max().item():.1f})")
    if a.end_to_end:
        end_to_end(b, files, a.rounds)
    return 0


def issue_time_eager(args: list[str]) -> float:
    """Best seconds of the batch-32 eager pass in a child process whose glibc is set as convlens set it when
    issue 15 was filed: ``mallopt`` got the trim threshold ``1 << 36`` through ctypes as the C int 0, i.e.
    no mmap and a heap trimmed on every free (docs/speed.md, fourth session)."""
    import subprocess

    env = {**os.environ, "CONVLENS_NO_MALLOPT": "1", "MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "0"}
    args = [arg for arg in args if arg != "--end-to-end"]
    out = subprocess.run([sys.executable, __file__, *args, "--issue-time-child"], env=env, capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip().splitlines()[-1])


def end_to_end(backbone, files: list, rounds: int) -> None:
    """The whole ``extract_features`` call, cache off: the eager path before issue 15 (batch-32 calls)
    against today's default (ONNX Runtime in chunks), alternating, best of ``rounds``."""
    from convlens.transfer import fast
    from convlens.transfer.features import extract_features

    eager = fast.eager_runner
    paths = {"before (PyTorch eager, batch 32)": ("torch", None), f"today (ONNX Runtime, chunks of {fast.ONNX_CHUNK})": ("onnxruntime", fast.EAGER_CHUNK)}
    best = {k: float("inf") for k in paths}
    for _ in range(rounds):
        for k, (engine, chunk) in paths.items():
            os.environ["CONVLENS_FEATURES_ENGINE"] = engine
            fast.eager_runner = lambda bb, device="cpu", chunk=chunk: eager(bb, device, chunk=chunk)
            t0 = time.perf_counter()
            extract_features(backbone, files, cache_dir=None, progress=False)
            best[k] = min(best[k], time.perf_counter() - t0)
    fast.eager_runner = eager
    for k, s in best.items():
        print(f"end to end, {k:40s} {len(files) / s:6.1f} images/s ({s:.1f} s)")
    (before, today) = best.values()
    print(f"end-to-end speed-up {before / today:.2f}x (decoding and resizing are the same in both)")


if __name__ == "__main__":
    sys.exit(main())
