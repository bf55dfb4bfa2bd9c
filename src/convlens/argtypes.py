"""argparse ``type=`` checkers: a value that means nothing is refused while the command line is
parsed, in one line, before torch or Lightning is imported (an argument error costs the parse,
not the 10 s of start-up a training verb pays).

Each checker is a plain function ``(text) -> value`` raising :class:`argparse.ArgumentTypeError`;
the numeric ones are :func:`convlens.options.checker`, the rule that config dataclass fields use too. argparse
prints ``convlens <verb>: error: argument --x: <message>`` and exits 2.
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from .options import checker

__all__ = ["at_least", "finite_non_negative_float", "finite_positive_float", "fraction", "non_negative_int", "output_dir",
           "positive_int", "probability"]

positive_int = checker(int, low=1)            # epochs, sizes, counts
non_negative_int = checker(int, low=0)        # 0 meaning 'none', e.g. --val-size 0
finite_positive_float = checker(float, above=0)       # learning rates, ratios
finite_non_negative_float = checker(float, low=0)     # weight decay, label smoothing
probability = checker(float, low=0, below=1)  # dropout: p = 1 drops every unit and nothing is learned
fraction = checker(float, above=0, below=1)   # a share of the data held out


def at_least(low: int) -> Callable[[str], int]:
    """A checker for integers >= ``low`` (``--folds`` needs 2)."""
    return checker(int, low=low)


def output_dir(text: str) -> str:
    """A folder convlens may write into: missing (it will be made) or an existing writable folder.
    Refused: a regular file, a folder (or its nearest existing parent) without write permission, or
    on a read-only file system: the early, cheap answer; writing checks again (ENOSPC, EROFS)."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder; give a folder (it is created if missing)")
    probe = path
    while not probe.exists() and probe.parent != probe:  # the first existing ancestor is where mkdir needs write permission
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: {probe} is a file, not a folder")
    if probe.exists() and not _writable(probe):
        raise argparse.ArgumentTypeError(f"{text}: {probe} is not writable; choose another folder")
    return text


def _writable(folder: Path) -> bool:
    """``os.access(W_OK)`` plus the read-only-mount check root needs (root passes access() on
    any mode bits, but not on a file system mounted read-only)."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        return not (os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return True
