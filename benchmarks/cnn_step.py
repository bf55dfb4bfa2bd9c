"""A/B of the chapter CNN's bare fp32 training step under two environments, in alternating child processes.

    flock /tmp/convlens-cpu.lock .venv/bin/python benchmarks/cnn_step.py --b OMP_WAIT_POLICY=ACTIVE
    flock /tmp/convlens-cpu.lock .venv/bin/python benchmarks/cnn_step.py --cap --b PYTHONPATH=/tmp/old/src

Whole runs of ``benchmarks/fashion_mnist.py`` drift by 10-30% within an hour on the project's virtual
machines, more than most levers are worth (docs/speed.md); the ratio of B to A within each round, whose two
children ran a few seconds apart, is the figure to read. This script times what the engine runs for
``convlens train --model cnn``: real Fashion-MNIST batches of 100, channels-last, fused Adam, the
allocator tuned, subnormals flushed, 2 torch threads; each round starts one child for A and one for B (which goes first
alternates) and each child reports the median of its steps after a warm-up. A and B differ only by the
environment variables given (``--a``/``--b``), so a code lever is measured by pointing ``PYTHONPATH`` of
one side at a worktree of the other commit. Prints the hardware line, both medians of the round medians,
the median and range of B/A within a round, and how many rounds B won.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from convlens.hardware import AVX2_CAP as CAP


def child(steps: int, warmup: int, seed: int, profile: bool = False) -> dict:
    import torch
    import torch.nn.functional as F

    from convlens._runtime import flush_denormals, set_threads, tune_allocator
    from convlens.hardware import hardware_line
    from convlens.data.fashion_mnist import load_fashion_mnist
    from convlens.engine.optim import fast_optimizer_kwargs, make_optimizer
    from convlens.engine.preprocess import normalise
    from convlens.models import create_model

    tune_allocator()
    set_threads()
    torch.manual_seed(seed)
    train = load_fashion_mnist("train")
    model = create_model("cnn").to(memory_format=torch.channels_last).train()
    opt = make_optimizer("adam", model.parameters(), lr=1e-3, **fast_optimizer_kwargs(model))
    order = torch.randperm(len(train.images))
    cfg = model.pretrained_cfg
    images = normalise(train.images[order], cfg["mean"], cfg["std"]).contiguous(memory_format=torch.channels_last)
    labels = train.labels[order]
    times = []

    def step(i: int) -> None:
        lo = (i * 100) % (len(images) - 100)
        x, y = images[lo:lo + 100], labels[lo:lo + 100]
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)

    with flush_denormals():  # as the engine trains on CPU
        table = _timed_steps(step, warmup, steps, profile)
    return {"median_ms": statistics.median(times) * 1e3, "mean_ms": statistics.fmean(times) * 1e3, "line": hardware_line(measure_peak=False), "profile": table}


def _timed_steps(step, warmup: int, steps: int, profile: bool) -> str:
    import torch

    for i in range(warmup):
        step(i)
    table = ""
    if profile:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as prof:
            for i in range(warmup, warmup + steps):
                step(i)
        table = prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=40)
    else:
        for i in range(warmup, warmup + steps):
            step(i)
    return table


def _env(pairs: list[str], cap: bool) -> dict[str, str]:
    env = dict(os.environ) | (CAP if cap else {})
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"cnn_step.py: {pair!r} is not NAME=VALUE")
        env[key] = value
    return env


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", nargs="*", default=[], metavar="NAME=VALUE", help="environment of side A (default: as is)")
    ap.add_argument("--b", nargs="*", default=[], metavar="NAME=VALUE", help="environment of side B")
    ap.add_argument("--cap", action="store_true", help="both sides under the AVX2 cap (" + " ".join(f"{k}={v}" for k, v in CAP.items()) + ")")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--profile", action="store_true",
                    help="instead of the A/B: one child of side A runs --steps steps under torch.profiler; prints ops by input shape")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    cmd = [sys.executable, __file__, "--child", "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if args.child:
        print(json.dumps(child(args.steps, args.warmup, seed=0, profile=args.profile)))
        return 0
    envs = {"A": _env(args.a, args.cap), "B": _env(args.b, args.cap)}

    def run_child(side: str, *extra: str) -> dict:
        out = subprocess.run(cmd + list(extra), env=envs[side], capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(f"cnn_step.py: side {side} failed:\n{out.stderr[-2000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    if args.profile:
        res = run_child("A", "--profile")
        print(res["line"], f"| A: {' '.join(args.a) or '(as is)'}", f"| step median {res['median_ms']:.2f} ms under the profiler", sep="\n")
        print(res["profile"])
        return 0
    medians: dict[str, list[float]] = {"A": [], "B": []}
    for r in range(args.rounds):
        for side in ("AB" if r % 2 == 0 else "BA"):
            res = run_child(side)
            if r == 0 and side == "A":
                print(res["line"], flush=True)
                print(f"A: {' '.join(args.a) or '(as is)'}   B: {' '.join(args.b) or '(as is)'}   cap: {args.cap}", flush=True)
            medians[side].append(res["median_ms"])
        print(f"round {r + 1}: A {medians['A'][-1]:.2f} ms  B {medians['B'][-1]:.2f} ms", flush=True)
    a, b = statistics.median(medians["A"]), statistics.median(medians["B"])
    paired = [mb / ma for ma, mb in zip(medians["A"], medians["B"])]
    wins = sum(r < 1 for r in paired)
    print(f"step median of round medians: A {a:.2f} ms, B {b:.2f} ms; B/A within a round: median {statistics.median(paired):.3f}, "
          f"range {min(paired):.3f}-{max(paired):.3f}; B faster in {wins}/{args.rounds} rounds")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
