"""The explorer's API through Starlette's TestClient, on real data: the chapter's cat photo, a
tiny real Fashion-MNIST run, karate."""
from __future__ import annotations

import io
import json
import threading
import time

import numpy as np
import pytest
from PIL import Image

PRETRAINED = "pretrained:efficientnet_lite0"


def _png(uri: str) -> Image.Image:
    import base64

    assert uri.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def _post(client, path, data, name="x.jpg", **params):
    return client.post(path, params=params, files={"image": (name, data, "application/octet-stream")})


# ---- Image -----------------------------------------------------------------------------------
def test_explain_cat_with_pretrained_backbone(client, cat_bytes):
    r = _post(client, "/api/explain", cat_bytes, "cat.jpg", model=PRETRAINED)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["top5"][0]["class"].startswith("tabby")
    assert len(j["top5"]) == 5 and j["top5"][0]["prob"] > 0.5
    assert [t["prob"] for t in j["top5"]] == sorted((t["prob"] for t in j["top5"]), reverse=True)
    assert j["cam_layer"] == "bn2"  # the last feature map before pooling of timm's EfficientNet
    cam = np.asarray(_png(j["cam"]).convert("RGB"))
    assert cam.shape == (224, 224, 3) and cam.std() > 10  # a picture, not a blank
    # feature maps by stage, low -> high level, strongest channel first
    stages = [f["layer"] for f in j["feature_maps"]]
    assert stages == ["blocks.0", "blocks.1", "blocks.2", "blocks.4", "bn2"]
    for f in j["feature_maps"]:
        assert f["strength"] == sorted(f["strength"], reverse=True)
    assert j["filters_layer"] == "conv_stem" and _png(j["filters"]).size[0] > 100


def test_explain_matches_the_explain_package(client, app, cat_bytes):
    """The page's numbers are explain_image's, not a re-implementation."""
    from convlens.explain import explain_image
    from convlens.serve.uploads import decode_image

    loaded = app.state.models.get(PRETRAINED)
    e = explain_image(loaded.ex, decode_image(cat_bytes), cam_layer="blocks.4", layers=loaded.stages)
    j = _post(client, "/api/explain", cat_bytes, model=PRETRAINED, layer="blocks.4").json()
    assert j["cam_layer"] == "blocks.4"
    assert [t["index"] for t in j["top5"]] == [i for i, _ in e.cam.topk(5)]
    assert j["top5"][0]["prob"] == pytest.approx(float(e.cam.probs[e.cam.pred]), abs=1e-6)
    assert j["feature_maps"][2]["channels"] == e.feature_maps[2].top(8)


def test_layer_picker_lists_real_layers(client):
    j = client.get("/api/models/layers", params={"model": PRETRAINED}).json()
    assert j["default"] == "bn2" and j["stages"][-1] == "bn2"
    assert len(j["layers"]) > 200 and "blocks.3.2.conv_pw" in j["layers"]
    r = _post(client, "/api/explain", b"x", model=PRETRAINED, layer="no.such.layer")
    assert r.status_code == 400


def test_run_model_on_the_image_page(client, cat_bytes):
    j = _post(client, "/api/explain", cat_bytes, model="run:tiny").json()
    assert j["cam_layer"] == "layer2"  # the chapter CNN's last feature map
    assert {t["class"] for t in j["top5"]} <= {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                                               "Sneaker", "Bag", "Ankle boot"}
    assert _png(j["input"]).mode == "L"  # grey, as the run trained


@pytest.mark.parametrize("name,data,status,words", [
    ("notes.txt", b"just some text, not a picture\n" * 10, 400, "not an image"),
    ("empty.jpg", b"", 400, "empty"),
])
def test_bad_uploads_get_a_clear_message(client, cat_bytes, name, data, status, words):
    r = _post(client, "/api/explain", data, name, model=PRETRAINED)
    assert r.status_code == status and words in r.json()["error"]
    assert _post(client, "/api/predict", cat_bytes, model=PRETRAINED).json()["top5"][0]["class"].startswith("tabby")


@pytest.fixture(scope="session")
def huge_png() -> bytes:
    """A real 100-megapixel (10,000 x 10,000) PNG: 1-bit, a few kB on disk, 100 MB decoded."""
    buf = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buf, format="PNG")
    return buf.getvalue()


def test_100_megapixel_image_is_refused_before_decoding(client, cat_bytes, huge_png):
    assert len(huge_png) < 200_000
    r = _post(client, "/api/explain", huge_png, "huge.png", model=PRETRAINED)
    assert r.status_code == 413
    assert "100.0 megapixels" in r.json()["error"] and "10000 x 10000" in r.json()["error"]
    assert _post(client, "/api/predict", cat_bytes, model=PRETRAINED).status_code == 200


def test_upload_size_limit(runs_root, cat_bytes):
    from starlette.testclient import TestClient

    from convlens.serve import create_app

    c = TestClient(create_app(runs_root, max_upload_bytes=10_000, allowed_hosts=["testserver"]))
    r = _post(c, "/api/predict", cat_bytes, model=PRETRAINED)
    assert r.status_code == 413 and "the limit is 10 kB" in r.json()["error"]


def test_korean_messages(client):
    m = client.get("/api/messages", params={"lang": "ko"}).json()
    assert m["ui_cam"].startswith("클래스 활성화 맵") and m["ui_feature_maps"].startswith("단계별 특성 맵")
    assert m["convolution"] == "합성곱" and m["fine_tuning"] == "미세 조정"
    r = _post(client, "/api/explain", b"", model=PRETRAINED, lang="ko")
    assert "비어 있습니다" in r.json()["error"]


# ---- Runs ------------------------------------------------------------------------------------
def test_runs_list_and_detail(client, runs_root):
    runs = client.get("/api/runs").json()["runs"]
    tiny = next(r for r in runs if r["name"] == "tiny")
    assert tiny["status"] == "finished" and tiny["model"] == "cnn" and tiny["epochs_done"] == 1
    d = client.get("/api/runs/detail", params={"run": "tiny"}).json()
    assert d["record"]["config"]["limit_train"] == 400 and len(d["metrics"]) == 1
    png = client.get("/api/runs/curves.png", params={"run": "tiny"})
    assert png.headers["content-type"] == "image/png" and Image.open(io.BytesIO(png.content)).size[0] > 300


def test_predictions_reproduce_the_runs_test_accuracy(client, runs_root):
    """Per-image predictions of the run's best checkpoint on its own 200 test images: the
    confusion matrix sums to 200 and its diagonal gives the accuracy the run recorded."""
    from convlens.runs import RunDir

    j = client.get("/api/runs/predictions", params={"run": "tiny"}).json()
    assert j["available"], j
    cm = np.array(j["confusion"])
    assert cm.shape == (10, 10) and cm.sum() == 200 == j["n"]
    recorded = RunDir(runs_root / "tiny").metrics()[-1]["test_acc"]
    assert np.trace(cm) / 200 == pytest.approx(recorded, abs=1e-9) == pytest.approx(j["accuracy"])
    probs = [w["prob"] for w in j["wrong"]]
    assert probs == sorted(probs, reverse=True) and all(w["true"] != w["pred"] for w in j["wrong"])
    i, k = np.unravel_index(np.argmax(cm - np.diag(np.diag(cm))), cm.shape)
    cell = client.get("/api/runs/cell", params={"run": "tiny", "true": int(i), "pred": int(k)}).json()
    assert cell["count"] == cm[i, k] == len(cell["images"]) and cell["true"] == j["classes"][i]


def test_predictions_unavailable_says_why(client, runs_root):
    from convlens.runs import RunDir

    RunDir.create(runs_root / "nockpt", {"model": "cnn", "data": "fashion-mnist", "epochs": 3}, kind="train")
    j = client.get("/api/runs/predictions", params={"run": "nockpt"}).json()
    assert j["available"] is False and "no checkpoint" in j["reason"]


def test_events_are_streamed_as_server_sent_events(client, runs_root):
    """A writer appends events (with a line split across two writes) while the stream tails
    the file; the stream delivers every event in order and ends at run_end."""
    from convlens.events import EventLog, RunEvent
    from convlens.runs import RunDir

    run = RunDir.create(runs_root / "live-api", {"model": "cnn", "data": "fashion-mnist", "epochs": 2}, kind="train")
    log = EventLog(run.path, min_step_interval=0.0)
    sent = [RunEvent("run_start", "live-api", total=2), RunEvent("epoch_start", "live-api", epoch=0),
            RunEvent("step", "live-api", epoch=0, step=5, total=10, metrics={"loss": 1.5}),
            RunEvent("epoch_end", "live-api", epoch=0, metrics={"val_acc": 0.75})]

    def write():
        for e in sent:
            time.sleep(0.1)
            log(e)
        half = RunEvent("run_end", "live-api", message="ok").to_json() + "\n"
        with (run.path / "events.jsonl").open("a") as f:  # a line written in two pieces
            f.write(half[:10])
            f.flush()
            time.sleep(0.3)
            f.write(half[10:])

    th = threading.Thread(target=write)
    th.start()
    with client.stream("GET", "/api/runs/events", params={"run": "live-api", "poll": 0.05}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        body = "".join(r.iter_text())
    th.join()
    got = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: {\"kind")]
    assert [g["kind"] for g in got] == ["run_start", "epoch_start", "step", "epoch_end", "run_end"]
    assert got[3]["metrics"]["val_acc"] == 0.75 and body.rstrip().endswith("data: {}")


def test_training_recipes_are_fixed(client, app, runs_root):
    r = client.post("/api/train", params={"recipe": "rm -rf /"})
    assert r.status_code == 400 and "choose one of" in r.json()["error"]
    argv = app.state.launcher.argv("fashion-cnn", "x")
    assert argv[1:4] == ["-m", "convlens", "train"] and argv[-4:] == ["--out", str(runs_root), "--name", "x"]
    assert client.get("/api/train").json()["running"] is False


# ---- Layers and Graphs -----------------------------------------------------------------------
def test_conv_arithmetic(client):
    j = client.get("/api/layers/conv", params={"w": 32, "f": 5, "s": 1, "p": 2}).json()
    assert j["output"] == 32 and j["arithmetic"] == "W2 = (32 - 5 + 2*2)/1 + 1 = 31/1 + 1 = 32"
    assert j["picture"] is None  # 36 cells wide: numbers only
    j = client.get("/api/layers/conv", params={"w": 7, "f": 3, "s": 2, "p": 1}).json()
    assert j["output"] == 4 and _png(j["picture"]).size[0] > 300
    r = client.get("/api/layers/conv", params={"w": 8, "f": 3, "s": 2, "p": 0})
    assert r.status_code == 400 and "not a whole number" in r.json()["error"]


def test_layer_table(client):
    from convlens.models import create_model

    j = client.get("/api/layers/table", params={"model": "cnn"}).json()
    assert j["totals"]["params"] == sum(p.numel() for p in create_model("cnn").parameters())
    assert j["rows"][0]["type"] == "Conv2d" and j["input_shape"] == [1, 28, 28]
    assert client.get("/api/layers/table", params={"model": "run:tiny"}).json()["totals"]["params"] == j["totals"]["params"]
    assert client.get("/api/layers/table", params={"model": "../etc"}).status_code == 400


def test_graph_page_karate(client):
    j = client.get("/api/graphs", params={"name": "karate"}).json()
    assert j["nodes"] == 34 and j["edges"] == 78 and j["shapes"]["H"] == [34, 2] and j["shapes"]["A_hat"] == [34, 34]
    assert j["classes"] == ["Mr. Hi", "Officer"] or len(j["classes"]) == 2
    assert "Â = D^-1/2 (A+I) D^-1/2" in j["text"] and _png(j["gcn"]).size[0] > 300
    assert client.get("/api/graphs", params={"name": "mnist"}).status_code == 400


# ---- files -----------------------------------------------------------------------------------
def test_only_files_under_the_runs_folder_are_served(client, runs_root, tmp_path):
    assert client.get("/files/tiny/plots/curves.png").status_code == 200
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (runs_root / "link.txt").symlink_to(secret)
    (runs_root / "linkdir").symlink_to(tmp_path)
    for url in ["/files/link.txt", "/files/linkdir/secret.txt", "/files/%2e%2e/%2e%2e/etc/passwd",
                "/files/tiny/%2e%2e/%2e%2e/etc/passwd", f"/files/{secret}", "/files//etc/passwd",
                "/files/tiny/checkpoints/best.ckpt", "/files/.convlens-serve/x"]:
        r = client.get(url)
        assert r.status_code == 404 and b"secret" not in r.content, url


@pytest.mark.slow
def test_training_started_from_the_page_writes_a_run(client, runs_root):
    """POST /api/train starts `python -m convlens train ... --out RUNS_DIR` as a subprocess;
    the run appears under the folder and finishes with its recorded test accuracy."""
    import os

    env_threads = os.environ.get("CONVLENS_THREADS")
    os.environ["CONVLENS_THREADS"] = "1"  # the child inherits it: one core on a shared machine
    try:
        started = client.post("/api/train", params={"recipe": "fashion-cnn-smoke"}).json()
    finally:
        if env_threads is None:
            os.environ.pop("CONVLENS_THREADS")
        else:
            os.environ["CONVLENS_THREADS"] = env_threads
    assert started["running"] and started["name"].startswith("fashion-cnn-smoke-")
    assert client.post("/api/train", params={"recipe": "fashion-cnn"}).status_code == 400  # one at a time
    deadline = time.time() + 240
    while client.get("/api/train").json()["running"]:
        assert time.time() < deadline, "training from the page did not finish in 240 s"
        time.sleep(1)
    state = client.get("/api/train").json()
    assert state["returncode"] == 0, state["log_tail"]
    run = next(r for r in client.get("/api/runs").json()["runs"] if r["name"] == started["name"])
    assert run["status"] == "finished" and run["epochs_done"] == 1 and run["has_checkpoint"]
    assert run["last"]["train_n"] == 500 and run["last"]["test_n"] == 300


def test_a_model_without_conv_layers_gives_predictions_only(client, runs_root, cat_bytes):
    """The chapter's DNN (a run folder written by the engine's own checkpoint writer): top-5
    and a note, no CAM, and the layer picker is empty instead of an error."""
    import torch

    from convlens.engine.checkpoint import model_meta, save_model_checkpoint
    from convlens.models import create_model
    from convlens.runs import RunDir

    torch.manual_seed(0)
    model = create_model("dnn")
    classes = [f"c{i}" for i in range(10)]
    run = RunDir.create(runs_root / "dnn-untrained", {"model": "dnn", "data": "fashion-mnist", "epochs": 1}, kind="train")
    save_model_checkpoint(run.checkpoints_dir / "best.ckpt", model, model_meta(model, "dnn", classes), epoch=0)
    layers = client.get("/api/models/layers", params={"model": "run:dnn-untrained"}).json()
    assert layers["layers"] == [] and layers["default"] == ""
    j = _post(client, "/api/explain", cat_bytes, model="run:dnn-untrained").json()
    assert "no convolutional layer" in j["note"] and "cam" not in j
    assert len(j["top5"]) == 5 and {t["class"] for t in j["top5"]} <= set(classes)


def test_other_sites_cannot_use_the_explorer(client, cat_bytes):
    """DNS rebinding (a foreign Host header) and cross-site POSTs (a foreign Origin) are refused."""
    assert client.get("/api/runs", headers={"Host": "evil.example"}).status_code == 400
    r = client.post("/api/train", params={"recipe": "fashion-cnn-smoke"}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-site" in r.json()["error"]
    r = client.post("/api/predict", params={"model": PRETRAINED}, headers={"Origin": "http://testserver"},
                    files={"image": ("cat.jpg", cat_bytes)})
    assert r.status_code == 200
