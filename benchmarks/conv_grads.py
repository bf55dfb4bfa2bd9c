"""conv2's backward on the chapter CNN's shapes, part by part: what oneDNN's weight gradient costs against one
GEMM over the patches, and what its bias reduction costs.

    flock /tmp/convlens-cpu.lock .venv/bin/python benchmarks/conv_grads.py            # natively
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \\
        flock /tmp/convlens-cpu.lock .venv/bin/python benchmarks/conv_grads.py        # AVX2 imitated

conv2 (32 -> 64, 3x3, no padding, on (100, 32, 14, 14), channels-last) is the largest part of a training step of
the chapter CNN: 531 MFLOP a batch for each of forward, input gradient and weight gradient. On the AVX2-only Zen 3
(docs/speed.md, seventh session) oneDNN's weight gradient took 6.7-7.9 ms with the bias's reduction (~1 ms), about
80-90 GFLOP/s, where MKL's fp32 GEMM peak read 83-138 GFLOP/s. The weight gradient as a GEMM::

    dW[o, (i, j, c)] = sum over (b, h, w) of G[(b, h, w), o] P[(b, h, w), (i, j, c)],  P = x[b, h + i, w + j, c]

with P (B H' W', 9 C_in) copied from a strided view of the channels-last input. Each variant is timed in
alternating rounds of the same process (median of each round, then the median over rounds).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from convlens._runtime import set_threads
from convlens.hardware import hardware_line

BATCH, C_IN, C_OUT, SIDE, K = 100, 32, 64, 14, 3
OUT = SIDE - K + 1


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCH, C_IN, SIDE, SIDE, generator=gen).contiguous(memory_format=torch.channels_last)
    w = torch.randn(C_OUT, C_IN, K, K, generator=gen).contiguous(memory_format=torch.channels_last)
    g = torch.randn(BATCH, C_OUT, OUT, OUT, generator=gen).contiguous(memory_format=torch.channels_last)
    return x, w, g


def onednn(x: torch.Tensor, w: torch.Tensor, g: torch.Tensor, mask: list[bool]) -> tuple:
    """aten's convolution backward (oneDNN on x86): mask = (input, weight, bias) gradients wanted."""
    return torch.ops.aten.convolution_backward(g, x, w, [C_OUT], [1, 1], [0, 0], [1, 1], False, [0, 0], 1, mask)


def weight_grad_by_gemm(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """dW = G^T P over the patches P (B H' W', K^2 C_in), gathered from a strided view of the NHWC input.

    Shapes: x (B, C_in, H, W) channels-last, g (B, C_out, H', W') channels-last -> (C_out, C_in, K, K).
    """
    nhwc = x.permute(0, 2, 3, 1)
    sb, sh, sw, sc = nhwc.stride()
    patches = nhwc.as_strided((BATCH, OUT, OUT, K, K, C_IN), (sb, sh, sw, sh, sw, sc)).reshape(-1, K * K * C_IN)
    rows = g.permute(0, 2, 3, 1).reshape(-1, C_OUT)
    return (rows.T @ patches).view(C_OUT, K, K, C_IN).permute(0, 3, 1, 2)


def _median_ms(fn, steps: int) -> float:
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--steps", type=int, default=30, help="timed calls of each variant in a round")
    args = ap.parse_args()
    set_threads()
    print(hardware_line(measure_peak=True), flush=True)
    x, w, g = _inputs()
    reference = onednn(x, w, g, [False, True, False])[1]
    by_gemm = weight_grad_by_gemm(x, g)
    print(f"weight gradient by GEMM against oneDNN's: max |difference| {(by_gemm - reference).abs().max().item():.2e} "
          f"of max |dW| {reference.abs().max().item():.0f}")
    variants = {
        "oneDNN input + weight + bias": lambda: onednn(x, w, g, [True, True, True]),
        "oneDNN input + weight": lambda: onednn(x, w, g, [True, True, False]),
        "oneDNN input": lambda: onednn(x, w, g, [True, False, False]),
        "oneDNN weight": lambda: onednn(x, w, g, [False, True, False]),
        "weight by GEMM over patches": lambda: weight_grad_by_gemm(x, g),
    }
    for fn in variants.values():  # warm-up: oneDNN builds its primitives at first call
        fn()
    rounds: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(args.rounds):
        order = list(variants) if r % 2 == 0 else list(reversed(variants))
        for name in order:
            rounds[name].append(_median_ms(variants[name], args.steps))
    flops = 2 * BATCH * OUT * OUT * C_OUT * C_IN * K * K
    ms = {name: statistics.median(v) for name, v in rounds.items()}
    for name, value in ms.items():
        print(f"  {name:30s} {value:6.2f} ms (rounds {min(rounds[name]):.2f}-{max(rounds[name]):.2f})")
    print(f"weight gradient: oneDNN {flops / ms['oneDNN weight'] / 1e6:.0f} GFLOP/s, by GEMM "
          f"{flops / ms['weight by GEMM over patches'] / 1e6:.0f} GFLOP/s -> GEMM/oneDNN time "
          f"{ms['weight by GEMM over patches'] / ms['oneDNN weight']:.2f}")
    print(f"bias reduction: {ms['oneDNN input + weight + bias'] - ms['oneDNN input + weight']:+.2f} ms of conv2's backward")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
