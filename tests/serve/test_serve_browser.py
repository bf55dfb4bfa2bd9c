"""The explorer in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright),
against a real uvicorn server on 127.0.0.1; plus a bounded load test on that server."""
from __future__ import annotations

import http.client
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

PRETRAINED = "pretrained:efficientnet_lite0"


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))


def test_image_page_cat_is_a_tabby_with_a_cam(page, server, shared_data):
    page.goto(server + "/")
    page.wait_for_selector("#layer-select option[value='bn2']", state="attached")
    assert page.locator("#layer-select").input_value() == "bn2"  # default: the last conv stage
    page.set_input_files("#file-input", str(shared_data / "images" / "cat.jpg"))
    page.wait_for_selector("#image-result:not([hidden])")
    top5 = page.locator("#top5 li").all_inner_texts()
    assert len(top5) == 5 and "tabby" in top5[0]
    cam_w = page.eval_on_selector("#cam-img", "img => img.complete && img.naturalWidth")
    assert cam_w == 224
    assert page.locator("#fm figure").count() == 5
    assert page.eval_on_selector("#filters-img", "img => img.naturalWidth") > 100
    # another layer from the picker: the CAM is recomputed there
    page.select_option("#layer-select", "blocks.4")
    page.wait_for_function("document.querySelector('#cam-caption').textContent.endsWith('@ blocks.4')")


def test_bad_upload_shows_the_message_and_the_page_keeps_working(page, server, shared_data, tmp_path):
    page.goto(server + "/")
    page.wait_for_selector("#layer-select option[value='bn2']", state="attached")
    bad = tmp_path / "notes.txt"
    bad.write_text("this is not a picture\n")
    page.set_input_files("#file-input", str(bad))
    page.wait_for_selector("#error:not([hidden])")
    msg = page.inner_text("#error")
    assert "notes.txt is not an image" in msg and "choose a photo" in msg
    page.set_input_files("#file-input", str(shared_data / "images" / "cat.jpg"))
    page.wait_for_selector("#image-result:not([hidden])")
    assert "tabby" in page.locator("#top5 li").first.inner_text()
    assert page.locator("#error").is_hidden()


def test_runs_page_shows_curves_confusion_and_cell_images(page, server):
    page.goto(server + "/?tab=runs")
    page.click("#runs-list tr[data-run='tiny']")
    page.wait_for_function("document.querySelector('#curves-img').naturalWidth > 300")
    page.wait_for_selector("#confusion td[data-true='0'][data-pred='0']", timeout=60_000)
    cells = page.locator("#confusion td")
    assert cells.count() == 100
    total = sum(int(t) for t in cells.all_inner_texts())
    assert total == 200
    assert page.locator("#wrong figure").count() > 0
    diag = page.locator("#confusion td[data-true='1'][data-pred='1']")
    n = int(diag.inner_text())
    diag.click()
    page.wait_for_function(f"document.querySelectorAll('#cell-images figure').length === {min(n, 48)}")
    assert '"limit_train": 400' in page.inner_text("#config")


def test_a_run_in_progress_updates_live(page, server, runs_root):
    """A run folder whose events.jsonl grows while the page is open (as a trainer writes it)."""
    from convlens.events import EventLog, RunEvent
    from convlens.runs import RunDir

    run = RunDir.create(runs_root / "live-browser", {"model": "cnn", "data": "fashion-mnist", "epochs": 3}, kind="train")
    log = EventLog(run.path, min_step_interval=0.0)
    log(RunEvent("run_start", "live-browser", total=3))
    page.goto(server + "/?tab=runs")
    page.click("#runs-list tr[data-run='live-browser']")
    page.wait_for_selector("#live:not([hidden])")
    # the status says "working..." until the predictions request answers (it raced this assertion once)
    page.wait_for_function("document.querySelector('#pred-status').textContent.includes('no checkpoint')",
                           timeout=30_000)
    assert "no checkpoint" in page.inner_text("#pred-status")  # said on the page, not hidden

    def trainer():
        for step in (10, 20):
            time.sleep(0.3)
            log(RunEvent("step", "live-browser", epoch=0, step=step, total=40, metrics={"loss": 2.0 / step}))
        time.sleep(0.3)
        log(RunEvent("epoch_end", "live-browser", epoch=0, metrics={"val_acc": 0.8125}))

    th = threading.Thread(target=trainer)
    th.start()
    page.wait_for_function("document.querySelector('#live-text').textContent.includes('val_acc 0.8125')")
    th.join()
    assert page.eval_on_selector("#live-bar", "b => b.value") == 20
    log(RunEvent("run_end", "live-browser", message="stopped"))
    page.wait_for_function("document.querySelector('#live-text').textContent.startsWith('run_end')")


def test_path_traversal_gets_404(server, page):
    u = urlparse(server)
    for path in ["/files/../../../../etc/passwd", "/files/tiny/../../../etc/passwd", "/files/%2e%2e/%2e%2e/etc/passwd",
                 "/files/..%2f..%2fetc%2fpasswd", "/files//etc/passwd", "/files/tiny/checkpoints/best.ckpt"]:
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        c.request("GET", path)  # sent as written: no client-side normalisation of '..'
        r = c.getresponse()
        body = r.read()
        assert r.status == 404 and b"root:" not in body, path
        c.close()
    resp = page.goto(server + "/files/%2e%2e/%2e%2e/%2e%2e/etc/passwd")
    assert resp.status == 404


def test_50_concurrent_predictions_answer_correctly_with_bounded_memory(server, cat_bytes):
    """50 requests at once against 127.0.0.1 (one model, requests queue on its lock): every
    answer is the cat's, within 120 s, and the server's memory grows by less than 150 MB."""
    import urllib.request

    url = server + "/api/predict?model=" + PRETRAINED

    def one(i: int) -> tuple[int, str]:
        boundary = f"----convlens{i}"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"cat{i}.jpg\"\r\n"
                f"Content-Type: image/jpeg\r\n\r\n").encode() + cat_bytes + f"\r\n--{boundary}--\r\n".encode()
        req = urllib.request.Request(url, data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        with urllib.request.urlopen(req, timeout=120) as r:
            import json

            return r.status, json.loads(r.read())["top5"][0]["class"]

    one(-1)  # the model is loaded before the clock starts
    before = _rss_mb()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(one, range(50)))
    elapsed = time.perf_counter() - t0
    grown = _rss_mb() - before
    print(f"50 concurrent predictions: {elapsed:.1f} s, memory +{grown:.0f} MB")
    assert results == [(200, "tabby, tabby cat")] * 50
    assert elapsed < 120, elapsed
    assert grown < 150, f"memory grew by {grown:.0f} MB"


def test_korean_page(page, server):
    page.goto(server + "/?lang=ko&tab=layers")
    page.wait_for_function("document.querySelector('#tabs button').textContent === '이미지'")
    assert page.inner_text("section#tab-layers h3") == "합성곱 연산 크기 계산"
    assert page.evaluate("document.documentElement.lang") == "ko"
    page.wait_for_function("document.querySelector('#conv-result').textContent.startsWith('W2 = (7 - 3 + 2*1)/2 + 1')")
