"""DistributedDataParallel on this machine: N ranks against 1 rank, same global batch, one run.

    flock /tmp/convlens-cpu.lock .venv/bin/python benchmarks/ddp.py                 # dnn + cnn, 2 ranks
    flock /tmp/convlens-cpu.lock .venv/bin/python benchmarks/ddp.py --only cnn --epochs 3

Each configuration is a real ``convlens train`` command (so DDP's process start, gloo/NCCL set-up
and rank-0 report are in the wall time): 1 rank with batch B and all the cores' threads, then
N ranks with batch B/N each (global batch B) and cores/N threads each, and 1 rank with that
one rank's cores/N threads (what one rank does alone: the parallel speed-up). Printed: the last
epoch's training images/s (``metrics.jsonl``), its ratio to 1 rank, the whole command's wall
time, the test accuracy, and the hardware line. On a CPU the ranks share the same cores and
memory bandwidth that one process's threads would use: DDP there teaches and tests the
multi-device path; the speed-up belongs to machines with several GPUs or nodes.
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

from convlens.hardware import hardware_line

SRC = Path(__file__).resolve().parents[1] / "src"


def run_train(model: str, devices: int, batch: int, epochs: int, out: Path, extra: list[str], threads: int | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("CONVLENS_THREADS", None)  # each rank takes cores / devices
    name = f"{model}-{devices}-{threads}"
    extra = extra + (["--threads", str(threads)] if threads else [])
    cmd = [sys.executable, "-m", "convlens", "train", "--model", model, "--epochs", str(epochs), "--batch-size", str(batch),
           "--devices", str(devices), "--val-size", "0", "--no-progress", "--out", str(out), "--name", name, *extra]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, text=True, capture_output=True, check=False)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stderr[-2000:]}")
    rows = [json.loads(x) for x in (out / name / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((out / name / "summary.json").read_text())
    return {"images_per_s": rows[-1]["images_per_s"], "epoch_s": rows[-1]["seconds"], "wall_s": wall,
            "test_acc": summary["test_acc"], "precision": summary["precision"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="dnn,cnn", help="models, comma-separated")
    ap.add_argument("--devices", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2, help="images/s is the last epoch's (the first pays warm-up)")
    ap.add_argument("--batch-size", type=int, default=100, help="global batch; each of N ranks takes batch/N")
    ap.add_argument("--limit-train", type=int, default=None)
    args = ap.parse_args()
    print(hardware_line())
    extra = ["--device", "cpu"] + (["--limit-train", str(args.limit_train)] if args.limit_train else [])
    with tempfile.TemporaryDirectory(prefix="convlens-ddp-bench-") as tmp:
        for model in [m.strip() for m in args.only.split(",") if m.strip()]:
            per_rank = max(1, (os.cpu_count() or 1) // args.devices)
            one = run_train(model, 1, args.batch_size, args.epochs, Path(tmp), extra)
            thin = run_train(model, 1, args.batch_size, args.epochs, Path(tmp), extra, threads=per_rank)
            many = run_train(model, args.devices, args.batch_size // args.devices, args.epochs, Path(tmp), extra)
            for label, r in ((f"1 rank x {os.cpu_count()} threads, batch {args.batch_size}", one),
                             (f"1 rank x {per_rank} thread(s), batch {args.batch_size}", thin),
                             (f"{args.devices} ranks x {per_rank} thread(s), batch {args.batch_size // args.devices} each", many)):
                print(f"{model:>4} {label:>38}: {r['images_per_s']:>9,.0f} img/s (epoch {args.epochs}: {r['epoch_s']:.2f} s), "
                      f"whole command {r['wall_s']:.1f} s, test accuracy {r['test_acc']:.2%} ({r['precision']})")
            print(f"{model:>4} {args.devices} ranks / 1 rank with all threads: {many['images_per_s'] / one['images_per_s']:.2f}x "
                  f"images/s, {one['wall_s'] / many['wall_s']:.2f}x whole command; / 1 rank with {per_rank} thread(s): "
                  f"{many['images_per_s'] / thin['images_per_s']:.2f}x images/s")


if __name__ == "__main__":
    main()
