"""Fixtures of the explorer's tests: a tiny real run, one app, a real server on 127.0.0.1 and
a real headless Chromium (Debian's, driven by Playwright; nothing is downloaded)."""
from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
PRETRAINED = "pretrained:efficientnet_lite0"


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory) -> Path:
    """A runs folder holding ``tiny``: the chapter's CNN trained for 1 epoch on 300 real
    Fashion-MNIST images (100 more for validation, 200 test images)."""
    from convlens.engine import TrainConfig, train

    root = tmp_path_factory.mktemp("runs")
    train(TrainConfig(model="cnn", epochs=1, limit_train=400, val_size=100, limit_test=200, out=str(root), name="tiny",
                      progress=False, threads=1, seed=0))
    return root


@pytest.fixture(scope="session")
def app(runs_root):
    from convlens.serve import create_app

    return create_app(runs_root, allowed_hosts=["127.0.0.1", "testserver"])  # testserver: TestClient's Host


@pytest.fixture(scope="session")
def client(app):
    from starlette.testclient import TestClient

    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="session")
def cat_bytes(shared_data) -> bytes:
    return (shared_data / "images" / "cat.jpg").read_bytes()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(app):
    """``http://127.0.0.1:<port>``: uvicorn serving the same app in a thread."""
    import uvicorn

    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    deadline = time.time() + 30
    while not srv.started:
        if time.time() > deadline or not th.is_alive():
            pytest.fail("the explorer did not start on 127.0.0.1")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    th.join(10)


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        pytest.skip("no chromium binary (/usr/bin/chromium): install Debian's chromium (scripts/setup does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")),
                              args=["--no-sandbox"], headless=True)
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    ctx.close()
