"""Benchmark: the explorer's Image page, one photo per request, after the model is loaded.
Target: under 1 s per image on a 2-core CPU.

Measured end to end over HTTP against a real uvicorn server on 127.0.0.1 (upload, decoding,
the explain package's one-pass prediction + Grad-CAM + feature maps of all 5 stages, PNG
encoding, JSON): ``POST /api/explain`` and the top-5-only ``POST /api/predict``.

Reference, in the same run on the same image and model: :func:`convlens.explain.explain_image`
called directly (no HTTP, no pictures), so the ratio is what the server adds.

    flock /tmp/convlens-cpu.lock .venv/bin/python benchmarks/serve.py [--repeats 10] [--image PATH]
"""
from __future__ import annotations

import argparse
import json
import socket
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = REPO.parent / "shared" / "data" / "images" / "cat.jpg"
TARGET_S = 1.0
MODEL = "pretrained:efficientnet_lite0"


def post(url: str, data: bytes, name: str) -> dict:
    boundary = "----convlensbench"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--image", default=str(DEFAULT_IMAGE))
    args = ap.parse_args()

    import uvicorn

    from convlens._runtime import set_threads, tune_allocator
    from convlens.explain import explain_image
    from convlens.hardware import hardware_line
    from convlens.serve import create_app
    from convlens.serve.uploads import decode_image

    tune_allocator()  # as `convlens serve` runs (cli.main)
    set_threads()
    print(hardware_line())
    data = Path(args.image).read_bytes()
    app = create_app(tempfile.mkdtemp(prefix="convlens-bench-runs-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"

    t0 = time.perf_counter()
    loaded = app.state.models.get(MODEL)
    load_s = time.perf_counter() - t0
    first = post(f"{base}/api/explain?model={MODEL}", data, Path(args.image).name)
    top = first["top5"][0]
    explain_http = timed(lambda: post(f"{base}/api/explain?model={MODEL}", data, "x.jpg"), args.repeats)
    predict_http = timed(lambda: post(f"{base}/api/predict?model={MODEL}", data, "x.jpg"), args.repeats)
    direct = timed(lambda: explain_image(loaded.ex, decode_image(data), layers=loaded.stages), args.repeats)
    server.should_exit = True

    med = statistics.median
    e, p, d = med(explain_http), med(predict_http), med(direct)
    print(f"image {args.image}: {top['class']} {top['prob']:.1%}; model load + warm-up {load_s:.2f} s (once)")
    print(f"POST /api/explain (top-5, Grad-CAM at {first['cam_layer']}, 5 stages' feature maps, filters, PNG+JSON): "
          f"median {e:.3f} s over {args.repeats} (min {min(explain_http):.3f}, max {max(explain_http):.3f})")
    print(f"POST /api/predict (top-5 only): median {p:.3f} s")
    print(f"reference, explain_image called directly (same image, model, stages): median {d:.3f} s "
          f"-> the server adds {e - d:.3f} s ({e / d:.2f}x)")
    ok = e < TARGET_S
    print(f"target < {TARGET_S:.0f} s per image after loading: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
