"""CSV/JSON files of tables (atomic writes: a crash never leaves half a file)."""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any, Sequence

from ..runs import atomic_write_json, atomic_write_text


def _cell(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return "x".join(str(x) for x in v)
    if isinstance(v, dict):
        return ";".join(f"{k}={x}" for k, x in v.items())
    return "" if v is None else v


def write_csv(path: str | os.PathLike, rows: Sequence[dict[str, Any]]) -> Path:
    """One line per row; shapes are written ``CxHxW`` (lists joined with ``x``)."""
    buf = io.StringIO()
    fields = list(rows[0]) if rows else []
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _cell(r.get(k)) for k in fields})
    return atomic_write_text(path, buf.getvalue())


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_json(path, obj)
