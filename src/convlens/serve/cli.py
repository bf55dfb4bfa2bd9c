"""``convlens serve [RUNS_DIR] [--port 8000] [--host 127.0.0.1] [--lang ko]``."""
from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("serve", help="explore images, runs, layers and graphs in the browser",
                              description="A local web page over RUNS_DIR: explain an image with any run's model or a "
                                          "pretrained backbone, browse runs live, layer tables, convolution arithmetic, "
                                          "graph convolutions. Open the printed address in a browser.")
    p.add_argument("runs_dir", nargs="?", default="runs", metavar="RUNS_DIR", help="folder of run folders (default runs/)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes it to your network)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--lang", default=None, choices=["en", "ko"], help="page language (default $CONVLENS_LANG or en)")
    p.add_argument("--no-preload", action="store_true", help="load the pretrained backbone on first use, not at start")
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from ..errors import ConvlensError

    if not 0 < args.port < 65536:
        raise ConvlensError(f"--port {args.port}: must be 1-65535")
    from .app import serve

    q = f"?lang={args.lang}" if args.lang else ""
    print(f"convlens explorer over {args.runs_dir}: open http://{args.host}:{args.port}/{q}  (Ctrl-C stops it)", flush=True)
    serve(args.runs_dir, host=args.host, port=args.port, lang=args.lang, preload=not args.no_preload)
    return 0
