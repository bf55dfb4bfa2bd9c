"""Process-level set-up shared by every verb: allocator, threads, device, seeds, versions."""
from __future__ import annotations

import ctypes
import functools
import os
import platform
import random
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from .errors import ConvlensError

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1
_allocator_tuned = False


def tune_allocator() -> bool:
    """Stop glibc from returning big blocks to the OS after every training step.

    Measured on the project's 2-core machines (see ../shared/chapter-code-notes.md):
    EfficientNet-Lite0 inference went from 18 to 48 images/s and the chapter CNN's 5 epochs
    from ~310 s to 258 s, with identical numbers. Same effect as
    ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647``. Returns whether it applied.
    """
    global _allocator_tuned
    if _allocator_tuned:
        return True
    if os.environ.get("CONVLENS_NO_MALLOPT") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1
        # mallopt takes a C int: 1 << 36 became 0 through ctypes, a threshold that trimmed the heap on every free
        ok = (libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX) == 1) and ok
    except (OSError, AttributeError):  # musl, macOS: nothing to tune
        return False
    _allocator_tuned = ok
    return ok


def set_threads(num_threads: int | None = None, default: int | None = None) -> int:
    """``num_threads``, else ``$CONVLENS_THREADS``, else ``default``, else one torch thread per
    core (never more: oversubscription made an OpenMP op 400x slower on the project's machines)."""
    n = num_threads or int(os.environ.get("CONVLENS_THREADS") or 0) or default or (os.cpu_count() or 1)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def denormals_flushed() -> bool:
    """Whether this thread flushes subnormal floats to zero (x86 FTZ), probed with one multiply."""
    tiny = torch.tensor([torch.finfo(torch.float32).tiny])
    return bool((tiny * 0.5)[0] == 0)


@functools.cache
def _openmp_runtime() -> ctypes.CDLL | None:
    """The OpenMP runtime torch runs its thread pool on (libgomp in the pip wheels), as loaded in this
    process; ``None`` where it cannot be found (no /proc, another parallel backend)."""
    if "OpenMP" not in torch.__config__.parallel_info():
        return None
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "/lib" in line}
    except OSError:
        return None
    for path in sorted(paths):
        if os.path.basename(path).startswith(("libgomp", "libomp", "libiomp5")):
            try:
                return ctypes.CDLL(path)
            except OSError:
                return None
    return None


def on_every_torch_thread(fn: Callable[[], Any]) -> bool:
    """Run ``fn`` once on this thread and once on each worker of torch's OpenMP pool; returns whether the
    workers were reached. For per-thread CPU state such as the x86 MXCSR register, which a worker copies
    from its creator when the pool starts and never again. ``GOMP_parallel`` (which LLVM's and Intel's
    runtimes export too) runs the callback on the team; each call takes the GIL in turn."""
    lib = _openmp_runtime()
    gomp_parallel = getattr(lib, "GOMP_parallel", None) if lib is not None else None
    if gomp_parallel is None:
        fn()
        return False
    callback = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda _data: fn())
    gomp_parallel.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
    gomp_parallel.restype = None
    gomp_parallel(ctypes.cast(callback, ctypes.c_void_p), None, torch.get_num_threads(), 0)
    return True


@contextmanager
def flush_denormals(enabled: bool = True) -> Iterator[bool]:
    """Treat subnormal floats as zero (FTZ/DAZ) on every torch CPU thread inside the block; yields whether
    they are flushed.

    Adam's first moment of a weight whose gradient is exactly zero (fc1's rows of dead ReLU units in the
    chapter CNN) decays into the subnormal range and stays there: ``lerp`` towards zero stops moving once
    0.1 m rounds to 0. After ~900 steps 455,000 of its 1.48 M moments were subnormal; on the project's
    Intel Xeon each vector op on them takes a microcode assist, and epochs 2-5 ran ~10% slower than the
    first (docs/speed.md). Values below 1.2e-38 carry nothing a float32 network can use: the accuracy was the
    same to the image. The flag is per thread, so it is set on torch's OpenMP workers as well, and restored on exit
    when it was off before. A no-op (yields False) where torch cannot set it (non-x86) or when disabled.
    """
    already = denormals_flushed()
    if not enabled or already:
        yield already
        return
    if not torch.set_flush_denormal(True):
        yield False
        return
    try:
        on_every_torch_thread(lambda: torch.set_flush_denormal(True))
        yield True
    finally:
        on_every_torch_thread(lambda: torch.set_flush_denormal(False))


def select_device(device: str | None = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; anything else is passed to torch."""
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ConvlensError(f"--device {device!r} is not a device torch knows: use auto, cpu, cuda, cuda:N or mps") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConvlensError(f"--device {device}: no CUDA device is available here; use --device cpu or auto")
    return dev


def skip_nvml_probe_without_cuda() -> bool:
    """Stop torch retrying NVML on every optimizer step when this machine has no CUDA device.

    Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` (for fork-based DataLoader workers on GPU
    machines); torch then dlopens NVML inside every ``torch.cuda.is_available()``, which Adam and
    SGD call on every ``step()``: 29 us a call here instead of 0.8 us. With no device there is
    nothing for NVML to protect. Returns True when it switched the probe off.
    """
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") != "1" or not torch.backends.cuda.is_built():
        return False
    if torch.cuda.device_count() > 0:
        return False
    os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)
    return True


def cpu_has_native_bf16() -> bool:
    """True when this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX) and no
    ``ONEDNN_MAX_CPU_ISA`` cap below AVX-512 emulates an AVX2-only machine: there bf16 autocast
    trained the chapter's CNN 1.85x faster (docs/first-cnn.md); elsewhere bf16 is emulated, no faster.
    """
    from .hardware import cpu_flags

    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if cap and not cap.startswith(("AVX512_CORE_BF16", "AVX512_CORE_AMX", "AVX10", "ALL", "DEFAULT")):
        return False
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto``: 16-mixed on CUDA, bf16-mixed on CPUs with native bf16, else 32-true."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "16-mixed"
    return "bf16-mixed" if device.type == "cpu" and cpu_has_native_bf16() else "32-true"


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where processed data sets and caches live: ``cache_dir``, ``$CONVLENS_CACHE`` or ``~/.cache/convlens``."""
    return Path(cache_dir or os.environ.get("CONVLENS_CACHE") or "~/.cache/convlens").expanduser()


def shared_data_dir() -> Path | None:
    """The project's read-only data folder: ``$CONVLENS_SHARED_DATA``, ``../shared/data`` from
    the current folder, or beside the source checkout (``<repo>/../shared/data``)."""
    env = os.environ.get("CONVLENS_SHARED_DATA")
    candidates = ([Path(env)] if env else []) + [Path.cwd().parent / "shared" / "data"]
    candidates += [p.parent / "shared" / "data" for p in Path(__file__).resolve().parents[:5]]
    return next((c for c in candidates if c.is_dir()), None)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def dist_version(dist: str) -> str | None:
    """An installed distribution's version from its metadata (importing Lightning or PyG just
    for a string costs seconds); ``None`` when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def versions() -> dict[str, Any]:
    """Versions of everything that can change a result, for the run record."""
    from . import __version__

    dists = ("torch", "torchvision", "lightning", "timm", "torchmetrics", "torch_geometric", "grad-cam", "numpy")
    return {"python": platform.python_version(), "platform": platform.platform(),
            **{d.replace("-", "_"): v for d in dists if (v := dist_version(d))}, "convlens": __version__,
            "torch_threads": torch.get_num_threads(), "cuda": torch.version.cuda if torch.cuda.is_available() else None}
