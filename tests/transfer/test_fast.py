"""transfer/fast.py: ONNX Runtime features equal PyTorch eager's within ATOL on real photos."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from convlens.errors import ConvlensError
from convlens.transfer.fast import ATOL, eager_runner, feature_runner, onnx_runner


def _photos(small_catdog: Path, lite0) -> torch.Tensor:
    from convlens.data.folders import open_image

    files = sorted((small_catdog / "train" / "Dog").iterdir())[:3] + sorted((small_catdog / "train" / "Cat").iterdir())[:3]
    tf = lite0.preprocess.transform()
    return torch.stack([tf(open_image(f, lite0.preprocess.channels)) for f in files])


def test_onnxruntime_features_equal_eager_within_atol_and_export_is_cached(lite0, small_catdog: Path, tmp_path: Path) -> None:
    x = _photos(small_catdog, lite0)
    ref = eager_runner(lite0)(x)
    fast = onnx_runner(lite0, cache_root=tmp_path)
    got = fast(x)
    assert got.shape == ref.shape == (6, 1280) and got.dtype == torch.float32
    diff = (got - ref).abs().max().item()
    assert diff <= ATOL, f"ONNX Runtime features differ from eager by {diff}"
    assert ref.abs().max() > 1.0  # real features, not zeros that would match trivially
    exported = list((tmp_path / "onnx").glob("*.onnx"))
    assert len(exported) == 1
    stamp = exported[0].stat().st_mtime_ns
    again = onnx_runner(lite0, cache_root=tmp_path)(x[:2])  # a different batch size: the batch axis is dynamic
    assert torch.allclose(again, got[:2], atol=1e-5) and exported[0].stat().st_mtime_ns == stamp


def test_engine_choice_and_fallback(lite0, monkeypatch: pytest.MonkeyPatch) -> None:
    assert feature_runner(lite0, engine="torch").engine == "torch"
    assert feature_runner(lite0).engine == "onnxruntime"
    monkeypatch.setenv("CONVLENS_FEATURES_ENGINE", "torch")
    assert feature_runner(lite0).engine == "torch"
    monkeypatch.setenv("CONVLENS_FEATURES_ENGINE", "tensorrt")
    with pytest.raises(ConvlensError, match="CONVLENS_FEATURES_ENGINE"):
        feature_runner(lite0)
    monkeypatch.delenv("CONVLENS_FEATURES_ENGINE")
    from convlens.transfer import fast

    def broken(*a, **k):
        raise RuntimeError("no runtime here")

    monkeypatch.setattr(fast, "onnx_runner", broken)
    assert feature_runner(lite0).engine == "torch"  # auto falls back to PyTorch
    with pytest.raises(RuntimeError):
        feature_runner(lite0, engine="onnxruntime")


def test_chunked_runners_give_the_whole_batch_features(lite0, small_catdog: Path, tmp_path: Path) -> None:
    """Chunks are a speed choice only: the same features, in order, for a batch that is not a multiple."""
    x = _photos(small_catdog, lite0)[:5]
    whole = eager_runner(lite0, chunk=None)(x)
    # eval mode: images do not mix; oneDNN may pick another kernel for another batch size (rounding only)
    assert (eager_runner(lite0, chunk=2)(x) - whole).abs().max().item() <= ATOL
    by_one = onnx_runner(lite0, cache_root=tmp_path, chunk=1)(x)
    by_all = onnx_runner(lite0, cache_root=tmp_path, chunk=None)(x)
    assert by_one.shape == (5, 1280) and (by_one - by_all).abs().max().item() <= ATOL
    assert (by_one - whole).abs().max().item() <= ATOL
