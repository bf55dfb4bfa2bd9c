"""``convlens`` command line: one sub-command per chapter idea, each a thin layer over a
Python function. Each sub-package contributes its verbs through ``register(subparsers)`` in
its own ``cli.py``; heavy imports happen inside the handlers so ``convlens --help`` is fast.

A :class:`~convlens.errors.ConvlensError` (the user's mistake) prints one line and exits 2;
Ctrl-C exits 130 after the running verb has saved what it can.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import warnings
from typing import Sequence

COMMAND_MODULES = (
    "convlens.engine.cli",     # train, compare, evaluate, predict
    "convlens.shapes.cli",     # shapes, conv
    "convlens.transfer.cli",   # transfer
    "convlens.explain.cli",    # explain
    "convlens.graph.cli",      # graph
    "convlens.tour",           # tour: the whole chapter on data at hand
)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="convlens", description="The chapter on convolutional networks, on real data.")
    parser.add_argument("--version", action="version", version=f"convlens {__version__}")
    parser.add_argument("--lang", choices=("en", "ko"), default=None,
                        help="language of reports and figure labels (default: $CONVLENS_LANG, else en); ko: 한국어")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in COMMAND_MODULES:
        # a sub-package without a cli module (a partial checkout, a trimmed install) adds no verb
        if importlib.util.find_spec(mod) is not None:
            importlib.import_module(mod).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from ._runtime import tune_allocator
    from .errors import ConvlensError

    tune_allocator()
    # PyG's import-time torch.jit.script calls warn on every command; they are not the user's concern
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated", category=FutureWarning)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        if args.lang:
            from .i18n import set_lang

            set_lang(args.lang)
        rc = args.func(args)
    except ConvlensError as exc:
        from .engine.training import TrainingInterrupted

        print(f"convlens: {'interrupted' if isinstance(exc, TrainingInterrupted) else 'error'}: {exc}", file=sys.stderr)
        return 130 if isinstance(exc, TrainingInterrupted) else 2
    except KeyboardInterrupt:
        print("convlens: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
