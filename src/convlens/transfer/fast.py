"""Frozen-backbone features at the hardware's pace: the same ``phi(x)`` as
:func:`convlens.transfer.features.pooled_features`, computed by ONNX Runtime on CPU when it is
installed, else by PyTorch (eager, ``inference_mode``, channels-last: the fallback).

Why ONNX Runtime: a frozen backbone is a fixed inference graph, which is what an inference
runtime is for. On export its graph optimiser folds every BatchNorm into the convolution
before it (``w' = w * gamma / sqrt(var + eps)``, ``b' = (b - mean) * gamma / sqrt(var + eps)
+ beta``), fuses the activations into the convolutions, and runs them with MLAS kernels
tuned for depthwise and 1x1 convolutions, the bulk of EfficientNet. Measured on the project's
2-core EPYC (docs/speed.md, ``benchmarks/features.py``), EfficientNet-Lite0 in chunks of
:data:`ONNX_CHUNK` images: 2.8x (native) and 3.3x (AVX2 cap) the images/s of the eager path
before issue 15, features equal to eager's within :data:`ATOL` (tested).

Caveat for figures taken under the AVX2 cap: ``ATEN_CPU_CAPABILITY``/``ONEDNN_MAX_CPU_ISA``
bind PyTorch and oneDNN, not ONNX Runtime's MLAS, which picks its own kernels from the CPU.

The exported graph is cached beside the features (``$CONVLENS_CACHE/features/onnx``), keyed
by the backbone's identity (network, weights, preprocessing), so export (~5 s) happens once.
Set ``CONVLENS_FEATURES_ENGINE=torch`` to force the PyTorch path.
"""
from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..engine.preprocess import normalise
from .backbones import Backbone

#: Largest absolute difference allowed between runtime and eager features (float32 sums in
#: another order; measured 8e-6 on features of magnitude ~5 for EfficientNet-Lite0).
ATOL = 1e-4

FeatureFn = Callable[[torch.Tensor], torch.Tensor]

#: Images per call into each engine. Small chunks keep a network's activations in the CPU's caches:
#: on the 2-core EPYC (docs/speed.md) EfficientNet-Lite0 ran at 310 img/s in ONNX Runtime calls of
#: 1-2 images against 208 img/s in calls of 32, and at 207 vs 81 img/s in PyTorch eager (8 vs 32).
ONNX_CHUNK = 2
EAGER_CHUNK = 8


def _in_chunks(fn: Callable[[Any], torch.Tensor], x: Any, chunk: int | None) -> torch.Tensor:
    """``fn`` over ``x`` (a tensor or an array) ``chunk`` items at a time, results concatenated."""
    if not chunk or len(x) <= chunk:
        return fn(x)
    return torch.cat([fn(x[i:i + chunk]) for i in range(0, len(x), chunk)])


class PooledFeatures(nn.Module):
    """``x (B, C, H, W) float, normalised -> (B, D)``: ``forward_head(forward_features(x), pre_logits=True)``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)


def eager_runner(backbone: Backbone, device: torch.device | str = "cpu", chunk: int | None = EAGER_CHUNK) -> FeatureFn:
    """PyTorch: eval mode, ``inference_mode``, channels-last (oneDNN's fast layout on CPU), ``chunk``
    images per call on CPU (None: the whole batch, as before issue 15)."""
    net = PooledFeatures(backbone.model.to(device, memory_format=torch.channels_last)).eval()

    @torch.inference_mode()
    def forward(images: torch.Tensor) -> torch.Tensor:
        x = normalise(images.to(device), backbone.mean, backbone.std).contiguous(memory_format=torch.channels_last)
        return net(x).float().cpu()

    def run(images: torch.Tensor) -> torch.Tensor:
        return _in_chunks(forward, images, chunk if torch.device(device).type == "cpu" else None)

    run.engine = "torch"  # type: ignore[attr-defined]
    return run


def export_onnx(backbone: Backbone, cache_root: Path | None = None) -> bytes:
    """The backbone's pooled-feature graph as ONNX bytes (batch axis dynamic), from the cache
    when it was exported before."""
    pp, path = backbone.preprocess, None
    if cache_root is not None:
        digest = hashlib.sha256(f"{backbone.key()}|torch={torch.__version__}".encode()).hexdigest()[:24]
        path = Path(cache_root) / "onnx" / f"{digest}.onnx"
        if path.is_file():
            return path.read_bytes()
    net = PooledFeatures(backbone.model.float().to(memory_format=torch.contiguous_format)).eval()
    buf = io.BytesIO()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(net, torch.zeros(1, pp.channels, pp.image_size, pp.image_size), buf, dynamo=False, input_names=["x"],
                          output_names=["features"], dynamic_axes={"x": {0: "batch"}, "features": {0: "batch"}},
                          opset_version=17)
    data = buf.getvalue()
    if path is not None:
        from ..runs import atomic_write_bytes

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
    return data


def onnx_runner(backbone: Backbone, cache_root: Path | None = None, threads: int | None = None,
                chunk: int | None = ONNX_CHUNK) -> FeatureFn:
    """ONNX Runtime on CPU, all graph optimisations (BatchNorm folding, activation fusion), ``chunk``
    images per call."""
    import onnxruntime as ort

    data = export_onnx(backbone, cache_root)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or torch.get_num_threads()
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])

    def run(images: torch.Tensor) -> torch.Tensor:
        # Normalise the whole batch first: PyTorch's threads waking between ONNX Runtime's calls
        # slow both pools down (measured: 105 against 300 img/s).
        x = normalise(images.cpu(), backbone.mean, backbone.std).contiguous().numpy()
        return _in_chunks(lambda part: torch.from_numpy(session.run(None, {"x": part})[0]), x, chunk)

    run.engine = "onnxruntime"  # type: ignore[attr-defined]
    return run


def feature_runner(backbone: Backbone, device: torch.device | str = "cpu", cache_root: Path | None = None,
                   engine: str | None = None) -> FeatureFn:
    """The fastest available ``uint8 (B, C, H, W) -> float (B, D)`` for this backbone.

    ``engine``: ``"onnxruntime"``, ``"torch"`` or None (= ``$CONVLENS_FEATURES_ENGINE``, else
    ONNX Runtime on CPU when importable, falling back to PyTorch when it is not or when the
    export fails).
    """
    engine = engine or os.environ.get("CONVLENS_FEATURES_ENGINE") or "auto"
    if engine not in ("auto", "onnxruntime", "torch"):
        from ..errors import ConvlensError

        raise ConvlensError(f"CONVLENS_FEATURES_ENGINE={engine!r}: choose onnxruntime, torch or leave it unset")
    if engine != "torch" and torch.device(device).type == "cpu":
        try:
            return onnx_runner(backbone, cache_root)
        except Exception as exc:
            if engine == "onnxruntime":
                raise
            import sys

            print(f"features: ONNX Runtime unavailable ({type(exc).__name__}: {str(exc)[:120]}); using PyTorch",
                  file=sys.stderr)
    return eager_runner(backbone, device)
