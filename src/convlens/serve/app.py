"""The explorer's web application (Starlette): one page with four tabs, a small JSON API,
server-sent progress events, and the run folder's files.

Routes (every ``/api`` answer is JSON, errors are ``{"error": "<one line>"}``)::

    GET  /                          the page (static/index.html; ?lang=ko for Korean)
    GET  /static/...                its CSS/JS (local files, no CDN)
    GET  /api/config                runs folder, language, pretrained models, recipes, limits
    GET  /api/messages?lang=        UI strings (convlens.i18n)
    GET  /api/models                models to pick: pretrained backbones and runs with a checkpoint
    GET  /api/models/layers?model=  the model's stages, layers with a feature map, default CAM layer
    POST /api/explain?model=&layer= multipart field "image": top-5, CAM, feature maps, filters
    POST /api/predict?model=        multipart field "image": top-5 only
    GET  /api/runs                  every run under the folder
    GET  /api/runs/detail?run=      record, metrics, summary, plots
    GET  /api/runs/curves.png?run=  the curves so far
    GET  /api/runs/predictions?run= confusion matrix + most confidently wrong test images
    GET  /api/runs/cell?run=&true=&pred=   the test images of one confusion cell
    GET  /api/runs/events?run=      text/event-stream of the run's progress events
    GET  /api/train, POST /api/train?recipe=   the page's training job
    GET  /api/layers/table?model=&input=       layer table
    GET  /api/layers/conv?w=&f=&s=&p=          convolution arithmetic
    GET  /api/graphs?name=karate|cora          A, Â, X and one GCN layer
    GET  /files/<path under the runs folder>   plots, reports (see files.safe_path); else 404
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import ConvlensError
from ..i18n import LANGS, check_lang, current_lang
from ..runs import _json_default
from . import messages  # noqa: F401 - registers the UI strings
from .files import media_type, safe_path
from .models import PRETRAINED, Busy, ModelCache
from .runview import finite
from .uploads import MAX_BYTES, MAX_PIXELS, UploadError, check_image, check_size, decode_image

STATIC = Path(__file__).parent / "static"


class JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        text = json.dumps(content, default=_json_default, ensure_ascii=False)
        return json.dumps(finite(json.loads(text)), ensure_ascii=False, allow_nan=False).encode("utf-8")


def error(msg: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": msg}, status_code=status)


class SameOriginPosts:
    """ASGI middleware: a ``POST`` carrying an ``Origin`` other than the page's own host -> 403."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            headers = dict(scope.get("headers") or [])
            origin = headers.get(b"origin", b"").decode("latin-1")
            host = headers.get(b"host", b"").decode("latin-1")
            if origin and origin != "null" and origin.split("://", 1)[-1] != host:
                await error(f"cross-site request from {origin} refused", 403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


def create_app(runs_dir: str | os.PathLike = "runs", lang: str | None = None, max_upload_bytes: int = MAX_BYTES,
               max_pixels: int = MAX_PIXELS, max_waiting: int = 64,
               allowed_hosts: tuple[str, ...] | list[str] = LOCAL_HOSTS) -> Starlette:
    """The explorer over ``runs_dir`` (created if missing). ``lang``: default UI language.

    ``allowed_hosts``: the ``Host`` headers answered (default: this machine's names only, so a
    web page elsewhere cannot reach the explorer through DNS rebinding); ``["*"]`` for any.
    A ``POST`` whose ``Origin`` is another site is refused (403): a page on the internet
    cannot start training or upload through the user's browser."""
    import matplotlib

    matplotlib.use("Agg")  # pictures are made in server threads: never a GUI backend
    from .runview import PredictionCache, TrainLauncher

    root = Path(runs_dir).expanduser().absolute()
    root.mkdir(parents=True, exist_ok=True)
    default_lang = check_lang(lang) or current_lang()
    models = ModelCache(root, max_waiting=max_waiting)
    preds = PredictionCache()
    launcher = TrainLauncher(root)

    def req_lang(request: Request) -> str:
        q = request.query_params.get("lang")
        return q if q in LANGS else default_lang

    def api(fn: Callable[[Request], Any]) -> Callable[[Request], Any]:
        """Run ``fn`` in the thread pool; a user's mistake answers 400 with its one line, a
        failure 500 with its message; the server keeps serving either way."""
        async def endpoint(request: Request) -> Response:
            try:
                out = fn(request)
                if asyncio.iscoroutine(out):
                    out = await out
                return out if isinstance(out, Response) else JSON(out)
            except UploadError as exc:
                return error(str(exc), exc.status)
            except Busy as exc:
                from ..i18n import t

                return error(t("err_busy", req_lang(request), n=exc.args[0]), 503)
            except ConvlensError as exc:
                return error(str(exc), 400)
            except (KeyError, ValueError) as exc:
                return error(f"bad request: {exc}", 400)
            except Exception as exc:  # noqa: BLE001 - one failed request must not stop the server
                return error(f"{type(exc).__name__}: {exc}", 500)
        return endpoint

    def param(request: Request, name: str) -> str:
        v = request.query_params.get(name)
        if v is None or v == "":
            raise ConvlensError(f"missing query parameter {name!r}")
        return v

    def int_param(request: Request, name: str) -> int:
        v = param(request, name)
        try:
            return int(v)
        except ValueError:
            raise ConvlensError(f"{name}={v!r}: must be a whole number") from None

    # ---- page and static files ----------------------------------------------------------------
    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    def config(request: Request) -> dict[str, Any]:
        from ..models import list_models
        from .runview import recipes

        return {"runs_dir": str(root), "lang": req_lang(request), "langs": list(LANGS), "pretrained": list(PRETRAINED),
                "models": sorted(set(list_models()) | {"tv/alexnet", "tv/resnet18", "resnet18"}),
                "recipes": recipes(), "max_upload_mb": max_upload_bytes / 1e6, "max_megapixels": max_pixels / 1e6}

    def msgs(request: Request) -> dict[str, str]:
        from .messages import ui_messages

        return ui_messages(req_lang(request))

    # ---- models and images --------------------------------------------------------------------
    def model_list(request: Request) -> dict[str, Any]:
        from .runview import list_runs

        runs = [r for r in list_runs(root) if r.get("has_checkpoint") and r.get("kind") != "graph"]  # image models
        return {"pretrained": [{"key": f"pretrained:{n}", "label": n} for n in PRETRAINED],
                "runs": [{"key": f"run:{r['name']}", "label": f"{r['name']} ({r['model']}, {r['data']})"} for r in runs]}

    async def model_layers(request: Request) -> dict[str, Any]:
        key = param(request, "model")
        loaded = await run_in_threadpool(models.get, key)
        return {"model": key, "name": loaded.ex.name, "stages": loaded.stages, "layers": loaded.layers,
                "default": loaded.cam_default, "input_size": list(loaded.ex.input_size),
                "classes": len(loaded.ex.classes)}

    async def read_upload(request: Request) -> tuple[bytes, str]:
        """The multipart field ``image``, read with a size cap while streaming, its header checked."""
        lang = req_lang(request)
        slack = 64 * 1024  # the multipart framing around the file
        try:
            n = int(request.headers.get("content-length") or 0)
        except ValueError:
            n = 0
        if n > max_upload_bytes + slack:  # refused before reading a byte
            check_size(n, max_upload_bytes, lang)
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > max_upload_bytes + slack:  # a client that lied about its length
                check_size(total, max_upload_bytes, lang)
            chunks.append(chunk)
        request._body = b"".join(chunks)  # request.form() re-reads the capped body
        form = await request.form(max_files=1, max_fields=8, max_part_size=max_upload_bytes)
        upload = form.get("image")
        if upload is None or isinstance(upload, str):
            from ..i18n import t

            raise UploadError(t("err_no_file", lang))
        data = await upload.read()
        await form.close()
        check_size(len(data), max_upload_bytes, lang)
        name = os.path.basename(upload.filename or "upload")[:80]
        await run_in_threadpool(check_image, data, name, max_pixels, lang)  # a bad file is refused at once
        return data, name

    async def image_ep(request: Request, explaining: bool) -> dict[str, Any]:
        """``image.explain`` or ``image.predict`` in the model's worker, on the upload decoded just before use."""
        from .image import explain, predict

        key, lang = param(request, "model"), req_lang(request)
        data, name = await read_upload(request)
        loaded = await run_in_threadpool(models.get, key)
        layer = request.query_params.get("layer") or None
        if explaining and layer is not None and layer not in loaded.layers:
            raise ConvlensError(f"layer {layer!r}: not a layer with a feature map of {key}; pick one from the list")

        def run() -> dict[str, Any]:
            image = decode_image(data, name, max_pixels, lang)
            return explain(loaded, image, layer) if explaining else predict(loaded, image)

        out = await asyncio.wrap_future(models.submit(loaded, run))
        out["image_name"] = name
        return out

    # ---- runs ------------------------------------------------------------------------------------
    def runs_ep(request: Request) -> dict[str, Any]:
        from .runview import list_runs

        return {"root": str(root), "runs": list_runs(root), "train": launcher.state()}

    def run_detail_ep(request: Request) -> dict[str, Any]:
        from .runview import run_detail

        return run_detail(root, param(request, "run"))

    def curves_ep(request: Request) -> Response:
        from .runview import curves_png

        png = curves_png(root, param(request, "run"))
        if png is None:
            return error("no epoch finished yet: no curves to draw", 404)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    def predictions_ep(request: Request) -> dict[str, Any]:
        from .runview import predictions_summary

        run = param(request, "run")
        try:
            p = preds.get(root, run)
        except ConvlensError as exc:
            return {"available": False, "reason": str(exc)}
        except Exception as exc:  # noqa: BLE001 - the page explains it instead of failing
            return {"available": False, "reason": f"{type(exc).__name__}: {exc}"}
        return {"available": True, **predictions_summary(p)}

    def cell_ep(request: Request) -> dict[str, Any]:
        from .runview import cell_images

        p = preds.get(root, param(request, "run"))
        return cell_images(p, int_param(request, "true"), int_param(request, "pred"))

    async def events_ep(request: Request) -> Response:
        from ..events import read_events
        from .runview import event_json, open_run

        try:
            run = open_run(root, param(request, "run"))
        except ConvlensError as exc:
            return error(str(exc), 404)
        poll = float(request.query_params.get("poll") or 0.5)

        async def stream():
            offset, idle = 0, 0.0
            yield "retry: 3000\n\n"
            while True:
                events, offset = await run_in_threadpool(read_events, run.path, offset)
                for e in events:
                    yield f"event: progress\ndata: {event_json(e)}\n\n"
                    if e.kind == "run_end":
                        yield "event: end\ndata: {}\n\n"
                        return
                if not events and offset == 0 and (run.path / "summary.json").is_file():
                    yield "event: end\ndata: {\"note\": \"finished, no progress events recorded\"}\n\n"
                    return
                if await request.is_disconnected():
                    return
                idle = 0.0 if events else idle + poll
                if idle >= 15:
                    idle = 0.0
                    yield ": keep-alive\n\n"
                await asyncio.sleep(poll)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    def train_ep(request: Request) -> dict[str, Any]:
        if request.method == "POST":
            return launcher.start(param(request, "recipe"))
        return launcher.state()

    # ---- layers and graphs -------------------------------------------------------------------
    def table_ep(request: Request) -> dict[str, Any]:
        from .labs import layer_table

        return layer_table(root, param(request, "model"), request.query_params.get("input"))

    def conv_ep(request: Request) -> dict[str, Any]:
        from .labs import conv_arithmetic

        return conv_arithmetic(int_param(request, "w"), int_param(request, "f"), int_param(request, "s"),
                               int_param(request, "p"))

    def graphs_ep(request: Request) -> dict[str, Any]:
        from .labs import graph_page

        return graph_page(param(request, "name"))

    # ---- the runs folder's files -----------------------------------------------------------------
    async def files_ep(request: Request) -> Response:
        rel = request.path_params["path"]
        p = safe_path(root, rel)
        if p is None or not p.is_file() or media_type(p) is None:
            return Response("404: not found", status_code=404, media_type="text/plain")
        return FileResponse(p, media_type=media_type(p))

    async def not_found(request: Request, exc: Exception) -> Response:
        return Response("404: not found", status_code=404, media_type="text/plain")

    def threaded(fn: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def run(request: Request) -> Any:
            return await run_in_threadpool(fn, request)
        return run

    routes = [
        Route("/", index),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        Route("/api/config", api(threaded(config))),
        Route("/api/messages", api(msgs)),
        Route("/api/models", api(threaded(model_list))),
        Route("/api/models/layers", api(model_layers)),
        Route("/api/explain", api(lambda r: image_ep(r, True)), methods=["POST"]),
        Route("/api/predict", api(lambda r: image_ep(r, False)), methods=["POST"]),
        Route("/api/runs", api(threaded(runs_ep))),
        Route("/api/runs/detail", api(threaded(run_detail_ep))),
        Route("/api/runs/curves.png", api(threaded(curves_ep))),
        Route("/api/runs/predictions", api(threaded(predictions_ep))),
        Route("/api/runs/cell", api(threaded(cell_ep))),
        Route("/api/runs/events", events_ep),
        Route("/api/train", api(threaded(train_ep)), methods=["GET", "POST"]),
        Route("/api/layers/table", api(threaded(table_ep))),
        Route("/api/layers/conv", api(threaded(conv_ep))),
        Route("/api/graphs", api(threaded(graphs_ep))),
        Route("/files/{path:path}", files_ep),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        launcher.stop()  # a training job this server started ends with it

    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    app = Starlette(routes=routes, exception_handlers={404: not_found}, lifespan=lifespan,
                    middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)),
                                Middleware(SameOriginPosts)])
    app.state.models = models
    app.state.root = root
    app.state.launcher = launcher
    return app


def serve(runs_dir: str | os.PathLike = "runs", host: str = "127.0.0.1", port: int = 8000, lang: str | None = None,
          preload: bool = True) -> None:
    """Run the explorer with uvicorn until Ctrl-C. ``preload``: load the pretrained backbone
    before the first request, so the first image is answered in well under a second."""
    import uvicorn

    local = host in LOCAL_HOSTS
    app = create_app(runs_dir, lang=lang, allowed_hosts=LOCAL_HOSTS if local else ["*"])
    if preload:
        app.state.models.get(f"pretrained:{PRETRAINED[0]}")
    uvicorn.run(app, host=host, port=port, log_level="warning")
