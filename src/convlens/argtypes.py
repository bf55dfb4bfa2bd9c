"""argparse ``type=`` checkers: a value that means nothing is refused while the command line is
parsed, in one line, before torch or Lightning is imported (an argument error costs the parse,
not the 10 s of start-up a training verb pays).

Each checker is a plain function ``(text) -> value`` raising :class:`argparse.ArgumentTypeError`,
so the same functions validate dataclass fields when flags are derived from them. argparse
prints ``convlens <verb>: error: argument --x: <message>`` and exits 2.
"""
from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

__all__ = [
    "at_least",
    "finite_float",
    "finite_non_negative_float",
    "finite_positive_float",
    "fraction",
    "non_negative_int",
    "output_dir",
    "positive_int",
    "probability",
]


def _int(text: str) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        # inf/nan parse as floats but train nothing: an lr of inf made an all-NaN model that
        # still "reported" 13% accuracy
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (epochs, sizes, counts)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (0 meaning 'none', e.g. --val-size 0)."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return value


def at_least(low: int):
    """A checker for integers >= ``low`` (``--folds`` needs 2)."""
    def check(text: str) -> int:
        value = _int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} must be at least {low}")
        return value

    check.__name__ = f"int>={low}"
    return check


def finite_float(text: str) -> float:
    """Any finite number (a seed-like offset, a temperature)."""
    return _float(text)


def finite_positive_float(text: str) -> float:
    """A finite number > 0 (learning rates, ratios)."""
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be positive")
    return value


def finite_non_negative_float(text: str) -> float:
    """A finite number >= 0 (weight decay, label smoothing)."""
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return value


def probability(text: str) -> float:
    """A number in [0, 1) -- dropout: p = 1 drops every unit and nothing is learned."""
    value = _float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be in [0, 1)")
    return value


def fraction(text: str) -> float:
    """A number in (0, 1) -- a share of the data held out."""
    value = _float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be between 0 and 1 (exclusive)")
    return value


def output_dir(text: str) -> str:
    """A folder convlens may write into: missing (it will be made) or an existing writable folder.

    Refused: a regular file, a folder (or its nearest existing parent) without write
    permission, or on a read-only file system. Checked again when writing (ENOSPC, EROFS): this
    is the early, cheap answer to the common mistakes.
    """
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder; give a folder (it is created if missing)")
    probe = path
    while not probe.exists():  # the first existing ancestor is where mkdir will need write permission
        if probe.parent == probe:
            break
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
