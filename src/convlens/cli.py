"""``convlens`` command line: one sub-command per chapter idea, each a thin layer over a
Python function. Each sub-package contributes its verbs through ``register(subparsers)`` in
its own ``cli.py``; heavy imports happen inside the handlers so ``convlens --help`` is fast.

A :class:`~convlens.errors.ConvlensError` (the user's mistake) prints one line and exits 2;
Ctrl-C exits 130 after the running verb has saved what it can. An output that cannot be written
(disk full, read-only, no permission) prints one line and exits 2.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import importlib.util
import sys
import warnings
from typing import Sequence

from .errors import ConvlensError

COMMAND_MODULES = (
    "convlens.engine.cli",     # train, compare, evaluate, predict
    "convlens.shapes.cli",     # shapes, conv
    "convlens.transfer.cli",   # transfer
    "convlens.explain.cli",    # explain
    "convlens.graph.cli",      # graph
    "convlens.tour",           # tour: the whole chapter on data at hand
    "convlens.serve.cli",      # serve: the explorer in the browser
)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (what was wrong, where to read more), not the
    whole usage block; sub-parsers inherit the class."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = OneLineParser(prog="convlens", description="The chapter on convolutional networks, on real data.")
    parser.add_argument("--version", action="version", version=f"convlens {__version__}")
    parser.add_argument("--lang", choices=("en", "ko"), default=None,
                        help="language of reports and figure labels (default: $CONVLENS_LANG, else en); ko: 한국어")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in COMMAND_MODULES:
        # a sub-package without a cli module (a partial checkout, a trimmed install) adds no verb
        if importlib.util.find_spec(mod) is not None:
            importlib.import_module(mod).register(sub)
    return parser


#: errno values that mean "the output cannot be written here": the user's to fix (free space,
#: another --out), not a convlens bug, so one line and exit 2 instead of a traceback.
OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT, errno.EPERM})


def output_error_line(exc: OSError) -> str:
    """One line for an OSError writing the output: which file, why, what to do."""
    where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
    advice = {errno.ENOSPC: "free some space or choose another --out", errno.EDQUOT: "free some space or choose another --out",
              errno.EROFS: "the file system is read-only; choose another --out"}.get(exc.errno, "choose a folder you may write to with --out")
    return f"{where}cannot write ({exc.strerror or exc}); {advice}; files already complete are kept, none is left half-written"


def _one_line_data_warnings() -> None:
    """Print :class:`convlens.errors.DataWarning` as ``convlens: warning: ...``, without
    the source location a user has no use for; other warnings keep Python's format."""
    plain = warnings.formatwarning

    def fmt(message, category, filename, lineno, line=None):  # warnings.formatwarning signature
        return f"convlens: warning: {message}\n" if category.__name__ == "DataWarning" else plain(message, category, filename, lineno, line)

    warnings.formatwarning = fmt


def main(argv: Sequence[str] | None = None) -> int:
    # PyG's import-time torch.jit.script calls warn on every command; they are not the user's concern
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated", category=FutureWarning)
    parser = build_parser()
    args = parser.parse_args(argv)  # argument errors end here, before torch is imported (convlens.argtypes)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from ._runtime import tune_allocator

    tune_allocator()
    _one_line_data_warnings()
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
    except OSError as exc:
        if exc.errno not in OUTPUT_ERRNOS:
            raise
        print(f"convlens: error: {output_error_line(exc)}", file=sys.stderr)
        return 2
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
