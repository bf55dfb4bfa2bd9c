"""Does the AVX2 emulation really slow the kernels down? fp32 matmul peak and a training-sized
convolution, each timed in a child process with and without the ISA cap.

    flock /tmp/convlens-cpu.lock .venv/bin/python benchmarks/isa_cap.py

The cap (``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2``) limits the kernels PyTorch and
oneDNN may pick, so an AVX-512 machine behaves like an AVX2-only one of the same size. A cap
that changed nothing would make every "AVX2" figure of docs/speed.md a lie, hence this check.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from convlens.hardware import AVX2_CAP as CAP


def _best(fn, seconds: float = 1.0) -> float:
    fn()
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def child() -> dict:
    import torch
    import torch.nn.functional as F

    from convlens._runtime import set_threads
    from convlens.hardware import hardware_line, matmul_peak_gflops

    set_threads()
    line = hardware_line(measure_peak=False)
    peak = matmul_peak_gflops(seconds=1.0)
    # the chapter CNN's second convolution on a batch of 100, NHWC, forward + backward
    x = torch.randn(100, 32, 14, 14).contiguous(memory_format=torch.channels_last).requires_grad_()
    w = torch.randn(64, 32, 3, 3).contiguous(memory_format=torch.channels_last).requires_grad_()
    flops = 3 * 2 * 100 * 64 * 12 * 12 * 32 * 9  # forward, grad input, grad weight

    def conv_fb() -> None:
        F.conv2d(x, w).sum().backward()

    t = _best(conv_fb)
    return {"line": line, "peak": peak, "conv_gflops": flops / t / 1e9, "conv_ms": t * 1e3}


def main() -> int:
    if "--child" in sys.argv:
        print(json.dumps(child()))
        return 0
    res = {}
    for label, extra in (("native", {}), ("AVX2 cap", CAP)):
        env = {k: v for k, v in os.environ.items() if k not in CAP} | extra
        out = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True, text=True, check=True)
        res[label] = r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{label:9s} {r['line']}")
        print(f"{'':9s} fp32 matmul peak {r['peak']:.0f} GFLOP/s; conv 32->64 3x3 on 100x14x14 fwd+bwd "
              f"{r['conv_ms']:.2f} ms ({r['conv_gflops']:.0f} GFLOP/s)", flush=True)
    n, c = res["native"], res["AVX2 cap"]
    print(f"cap slows the matmul peak {n['peak'] / c['peak']:.2f}x and the convolution {n['conv_gflops'] / c['conv_gflops']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
