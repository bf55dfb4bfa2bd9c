"""Which paths the explorer serves (convlens.serve.files.safe_path) and how uploads are checked."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from convlens.serve.files import media_type, safe_path
from convlens.serve.uploads import UploadError, decode_image


@pytest.fixture()
def root(tmp_path):
    r = tmp_path / "runs"
    (r / "a" / "plots").mkdir(parents=True)
    (r / "a" / "plots" / "c.png").write_bytes(b"png")
    (tmp_path / "outside.txt").write_text("no")
    return r


def test_safe_paths(root):
    assert safe_path(root, "a/plots/c.png") == root / "a" / "plots" / "c.png"
    assert safe_path(root, "a") == root / "a"


@pytest.mark.parametrize("rel", ["", "/etc/passwd", "../outside.txt", "a/../../outside.txt", "a/./plots/c.png",
                                 "a//plots", "a\\..\\..\\outside.txt", ".hidden", "a/.git", "a/plots/c.png\x00.txt",
                                 "a/missing.png"])
def test_unsafe_paths(root, rel):
    assert safe_path(root, rel) is None


def test_symlinks_are_refused(root, tmp_path):
    (root / "l.txt").symlink_to(tmp_path / "outside.txt")
    (root / "d").symlink_to(tmp_path)
    (root / "a" / "inner.png").symlink_to(root / "a" / "plots" / "c.png")  # even one pointing inside
    assert safe_path(root, "l.txt") is None and safe_path(root, "d/outside.txt") is None
    assert safe_path(root, "a/inner.png") is None


def test_checkpoints_and_pickles_are_never_served():
    from pathlib import Path

    for name in ("best.ckpt", "x.pt", "data.pkl", "features.npz"):
        assert media_type(Path(name)) is None
    assert media_type(Path("report.html")).startswith("text/html")


def _bytes(im: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


def test_decode_accepts_real_images_in_any_mode():
    for mode, fmt in (("RGB", "JPEG"), ("RGBA", "PNG"), ("L", "PNG"), ("P", "GIF"), ("RGB", "WEBP"), ("I;16", "PNG")):
        im = decode_image(_bytes(Image.new(mode, (40, 30)), fmt), "x")
        assert im.size == (40, 30)


def test_decode_refuses_truncated_and_foreign_files():
    jpg = _bytes(Image.new("RGB", (200, 200), (200, 10, 10)), "JPEG")
    with pytest.raises(UploadError, match="truncated or corrupt"):
        decode_image(jpg[: len(jpg) // 3], "half.jpg")
    with pytest.raises(UploadError, match="not an image"):
        decode_image(b"%PDF-1.4 this is a pdf", "doc.pdf")
    with pytest.raises(UploadError, match=r"ICO file; upload JPEG"):
        decode_image(_bytes(Image.new("RGB", (16, 16)), "ICO"), "icon.ico")
    with pytest.raises(UploadError, match="megapixels") as e:
        decode_image(_bytes(Image.new("1", (8000, 6000)), "PNG"), "big.png", max_pixels=40_000_000)
    assert e.value.status == 413


def test_requests_queue_on_one_worker_and_too_many_are_refused(tmp_path):
    import threading

    from convlens.serve.models import Busy, Loaded, ModelCache

    cache = ModelCache(tmp_path, max_waiting=2)
    loaded = Loaded("k", ex=None, stages=[], layers=[], cam_default="")
    gate, order = threading.Event(), []
    first = cache.submit(loaded, lambda: (gate.wait(10), order.append(threading.current_thread().name)))
    second = cache.submit(loaded, lambda: order.append(threading.current_thread().name))
    with pytest.raises(Busy):
        cache.submit(loaded, lambda: None)
    gate.set()
    first.result(10), second.result(10)
    assert len(order) == 2 and order[0] == order[1]  # one worker thread ran both, in order
    cache.submit(loaded, lambda: None).result(10)  # the queue drained: accepted again


def test_nan_metrics_become_null_in_events():
    import json

    from convlens.events import RunEvent
    from convlens.serve.runview import event_json

    e = json.loads(event_json(RunEvent("epoch_end", "r", epoch=0, metrics={"loss": float("nan"), "acc": 0.5})))
    assert e["metrics"] == {"loss": None, "acc": 0.5}


def test_a_200_megapixel_header_trips_pils_guard_with_our_message():
    buf = io.BytesIO()
    Image.new("1", (20_000, 10_000)).save(buf, format="PNG")  # 200 MP: PIL refuses the header itself
    with pytest.raises(UploadError, match="over 40 megapixels") as e:
        decode_image(buf.getvalue(), "bomb.png")
    assert e.value.status == 413
