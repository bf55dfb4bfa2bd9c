"""Which files the explorer may read: only real files under the runs folder.

:func:`safe_path` turns a relative path from a URL into a path under ``root`` or ``None``
(the caller answers 404, never saying why). Refused: an absolute path, a ``..`` or ``.``
component, a backslash or NUL, a hidden component (``.git``, temporary files), and any
component that is a symbolic link (a link inside the runs folder could point anywhere);
finally the resolved path must still lie under the resolved root.
"""
from __future__ import annotations

import os
from pathlib import Path

MEDIA = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml",
         ".html": "text/html; charset=utf-8", ".json": "application/json", ".jsonl": "text/plain; charset=utf-8",
         ".csv": "text/csv; charset=utf-8", ".txt": "text/plain; charset=utf-8"}


def safe_path(root: Path, rel: str) -> Path | None:
    """``root / rel`` if it is safe to read (see the module docstring), else ``None``."""
    if not rel or "\\" in rel or "\x00" in rel or rel.startswith("/") or os.path.isabs(rel):
        return None
    parts = rel.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    cur = root
    for p in parts:
        cur = cur / p
        if cur.is_symlink():
            return None
    try:
        real_root = root.resolve(strict=True)
        real = cur.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if real != real_root and real_root not in real.parents:
        return None
    return cur


def media_type(path: Path) -> str | None:
    """The content type of a file the explorer serves; ``None``: not served (checkpoints, pickles)."""
    return MEDIA.get(path.suffix.lower())
