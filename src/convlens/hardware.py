"""What machine a figure was measured on: CPU model, instruction sets, threads, and a matmul peak
measured at start, so every benchmark can say which share of the hardware it reached.

Machines of the same size differ: some multiply bf16 in hardware (AVX512-BF16, AMX), others are
AVX2-only. A speed-up measured on one kind may vanish on the other, hence :func:`hardware_line`
on every benchmark's first line.
"""
from __future__ import annotations

import os
import platform
import time
from functools import lru_cache

#: ISA flags from /proc/cpuinfo worth naming, in the order they are printed.
ISA_FLAGS: tuple[tuple[str, str], ...] = (
    ("avx2", "AVX2"), ("fma", "FMA"), ("avx512f", "AVX-512"), ("avx512_vnni", "AVX512-VNNI"),
    ("avx512_bf16", "AVX512-BF16"), ("amx_bf16", "AMX-BF16"), ("amx_tile", "AMX"),
)


@lru_cache(maxsize=None)
def _cpuinfo(key: str) -> str | None:
    """The value of the first ``key`` line of /proc/cpuinfo (``None``: no such line or file)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith(key)), None)
    except OSError:
        return None


def cpu_model() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_flags() -> frozenset[str]:
    return frozenset((_cpuinfo("flags") or "").split())


def isa_names() -> list[str]:
    """The instruction sets named in :data:`ISA_FLAGS` this CPU has (``["AVX2", "FMA", ...]``)."""
    flags = cpu_flags()
    return [name for flag, name in ISA_FLAGS if flag in flags]


#: The environment that emulates an AVX2-only machine on a newer one (docs/speed.md, "Emulating an AVX2-only machine").
AVX2_CAP = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def isa_cap() -> str | None:
    """A cap set on the kernels PyTorch, oneDNN and MKL may use (``ATEN_CPU_CAPABILITY`` /
    ``ONEDNN_MAX_CPU_ISA`` / ``MKL_ENABLE_INSTRUCTIONS``), which is how an AVX2-only machine is emulated on a
    newer one. MKL ignores its cap on AMD CPUs (it runs AVX2 code there anyway) but not on Intel ones."""
    return ", ".join(f"{k}={os.environ[k]}" for k in AVX2_CAP if os.environ.get(k)) or None


def matmul_peak_gflops(dtype: str = "float32", size: int = 1024, seconds: float = 0.5) -> float:
    """GFLOP/s of a square ``size`` matmul in ``dtype`` on this process's torch threads, best of
    repeated timings over about ``seconds``: the ceiling that training figures are compared to."""
    import torch

    a, b = (torch.randn(size, size).to(getattr(torch, dtype)) for _ in range(2))
    a @ b  # warm-up: first call picks kernels
    best = float("inf")
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best / 1e9


_last_peak: float | None = None


def machine_label() -> str:
    """How figures of this process are labelled: ``"AVX2 (emulated by ISA cap on AMD EPYC)"``
    under a cap to AVX2, else the CPU's best ISA named in :data:`ISA_FLAGS`."""
    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("ATEN_CPU_CAPABILITY") or "").upper()
    if cap.startswith("AVX2"):
        return f"AVX2 (emulated by ISA cap on {cpu_model()})"
    names = isa_names()
    return f"{names[-1] if names else 'unknown ISA'} ({cpu_model()})"


def last_peak(remeasure: bool = False) -> float:
    """The fp32 matmul peak the last :func:`hardware_line` measured (measured now if none).

    ``remeasure``: measure again and keep the higher, since one 0.5-second reading can come out low on a shared
    virtual machine (151 GFLOP/s once at a benchmark's start, against 224-238 in every other reading that hour)."""
    global _last_peak

    if _last_peak is None or remeasure:
        _last_peak = max(_last_peak or 0.0, matmul_peak_gflops())
    return _last_peak


def hardware_line(precision: str = "fp32", measure_peak: bool = True) -> str:
    """One line naming CPU, ISA, torch threads, precision and (optionally) the fp32 matmul peak."""
    import torch

    global _last_peak

    parts = [f"CPU: {cpu_model()} ({os.cpu_count()} cores)", "ISA: " + ("/".join(isa_names()) or "unknown"),
             f"torch kernels: {torch.backends.cpu.get_cpu_capability()}", f"threads: {torch.get_num_threads()}",
             f"precision: {precision}"]
    if cap := isa_cap():
        parts.append(f"capped: {cap} = {machine_label()}")
    if measure_peak:
        _last_peak = matmul_peak_gflops()
        parts.append(f"fp32 matmul peak: {_last_peak:.0f} GFLOP/s")
    if torch.cuda.is_available():
        parts.append(f"GPU: {torch.cuda.get_device_name()}")
    return " | ".join(parts)


def forward_flops(model: "object", input_shape: tuple[int, ...] | None = None, train: bool = True) -> float:
    """FLOPs (2 x multiply-adds, fvcore's count) of one image's forward pass in training mode
    (``train=True``: no test-time augmentation such as ``fashion_vgg``'s flip TTA, which the
    eval-mode layer table counts twice) or in eval mode."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # fvcore's import calls the deprecated torch.jit.script
        from fvcore.nn import FlopCountAnalysis

    shape = tuple(input_shape or model.pretrained_cfg["input_size"])
    was = model.training
    model.train(train)
    try:
        fca = FlopCountAnalysis(model, torch.zeros(2, *shape))  # batch 2: BatchNorm in train mode needs > 1 value
        fca.unsupported_ops_warnings(False)
        fca.uncalled_modules_warnings(False)
        return 2.0 * fca.total() / 2
    finally:
        model.train(was)


def share_of_peak(flops: float, seconds: float, peak_gflops: float) -> str:
    """``"34 GFLOP/s = 21% of the fp32 matmul peak"`` for ``flops`` done in ``seconds``.

    Training counts 3x the forward FLOPs (forward, gradient of the inputs, gradient of the
    weights): the usual estimate, exact for convolutions and linear layers.
    """
    gflops = flops / max(seconds, 1e-12) / 1e9
    return f"{gflops:.0f} GFLOP/s = {gflops / peak_gflops:.0%} of the fp32 matmul peak"
