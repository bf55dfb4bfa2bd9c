"""Screenshots of the explorer's four pages for docs/explorer.md, taken in Debian's Chromium.

    PYTHONPATH=src .venv/bin/python docs/explorer_screenshots.py RUNS_DIR [RUN_NAME]

Starts the explorer over RUNS_DIR on 127.0.0.1, opens each tab in headless Chromium
(Playwright pointed at /usr/bin/chromium: nothing is downloaded) and writes
docs/img/explorer-{image,runs,layers,graphs}.png.
"""
from __future__ import annotations

import io
import socket
import sys
import threading
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
CAT = DOCS.parents[1] / "shared" / "data" / "images" / "cat.jpg"


def shrink(png: bytes, out: Path, width: int = 1000) -> None:
    """Save a screenshot as a small palette PNG (docs stay light)."""
    from PIL import Image

    im = Image.open(io.BytesIO(png)).convert("RGB")
    if im.width > width:
        im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
    im.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    print(out, f"{out.stat().st_size / 1e3:.0f} kB")


def main() -> int:
    import uvicorn
    from playwright.sync_api import sync_playwright

    from convlens.serve import create_app

    runs = Path(sys.argv[1])
    run = sys.argv[2] if len(sys.argv) > 2 else None
    app = create_app(runs)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    img = DOCS / "img"
    img.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        pg = b.new_page(viewport={"width": 1200, "height": 900})
        pg.set_default_timeout(120_000)
        pg.goto(base + "/")
        pg.wait_for_selector("#layer-select option[value='bn2']", state="attached")
        pg.set_input_files("#file-input", str(CAT))
        pg.wait_for_selector("#image-result:not([hidden])")
        pg.wait_for_timeout(300)
        shrink(pg.screenshot(full_page=True), img / "explorer-image.png")
        pg.goto(base + "/?tab=runs")
        pg.wait_for_selector("#runs-list tr.run")
        pg.click(f"#runs-list tr[data-run='{run}']" if run else "#runs-list tr.run")
        pg.wait_for_selector("#confusion td[data-true='0'][data-pred='6']")
        pg.click("#confusion td[data-true='0'][data-pred='6']")  # T-shirt/top taken for Shirt
        pg.wait_for_selector("#cell-images figure")
        pg.wait_for_function("document.querySelector('#curves-img').naturalWidth > 0")
        shrink(pg.screenshot(full_page=True), img / "explorer-runs.png")
        pg.goto(base + "/?tab=layers")
        pg.wait_for_selector("#layer-table tr td")
        pg.wait_for_function("document.querySelector('#conv-img').naturalWidth > 0")
        shrink(pg.screenshot(full_page=False), img / "explorer-layers.png")
        pg.goto(base + "/?tab=graphs&lang=ko")
        pg.wait_for_selector("#graph-out:not([hidden])")
        pg.wait_for_function("document.querySelector('#graph-gcn').naturalWidth > 0")
        shrink(pg.screenshot(full_page=True), img / "explorer-graphs-ko.png")
        b.close()
    server.should_exit = True
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
