"""User-facing errors.

A :class:`ConvlensError` is a mistake the user can fix (a missing file, an unknown name, a
bad argument). The CLI prints its message on one line, without a traceback, and exits 2.
Anything else is a bug in convlens and keeps its traceback.
"""
from __future__ import annotations


class ConvlensError(Exception):
    """An error caused by the user's input; its message says what to do."""


class DataError(ConvlensError):
    """A data file or folder is missing, truncated or malformed."""


class CheckpointError(ConvlensError):
    """A checkpoint or weights file does not fit the model it is loaded into."""


class DataWarning(UserWarning):
    """Data that trains but whose numbers mean less than they say; the CLI prints it as one
    ``convlens: warning:`` line."""
