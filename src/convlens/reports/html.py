"""A self-contained HTML report: every image is inlined, so the file opens offline, can be
mailed, and never points at a file that is not there.

>>> r = Report("cnn on fashion-mnist")
>>> r.heading("Curves"); r.image("runs/x/plots/curves.png"); r.table([{"epoch": 1, "acc": 0.9}])
>>> r.write("runs/x/report.html")
"""
from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any, Sequence

from ..i18n import current_lang, tr
from ..runs import atomic_write_text, figure_png

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #446;padding-bottom:.2em} h2{margin-top:1.6em;color:#335}
table{border-collapse:collapse;margin:.6em 0} td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#eef} td:first-child,th:first-child{text-align:left}
figure{display:inline-block;margin:.5em;vertical-align:top} figcaption{font-size:.85em;color:#555;text-align:center}
img{max-width:100%} .note{background:#fff8e0;border-left:4px solid #e0b000;padding:.4em .8em}
code,pre{background:#f4f4f8;padding:.1em .3em} .muted{color:#777;font-size:.9em}
"""


def png_data_uri(src: Any) -> str:
    """``src`` is a PNG path, PNG bytes or a matplotlib figure: a ``data:`` URI to inline it."""
    if isinstance(src, (str, os.PathLike)):
        data = Path(src).read_bytes()
    elif isinstance(src, (bytes, bytearray)):
        data = bytes(src)
    else:  # a matplotlib figure (left open: a notebook may still show it)
        data = figure_png(src, close=False)
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return html.escape(str(v))


class Report:
    """Builds one HTML page from headings, paragraphs, tables and images."""

    def __init__(self, title: str, subtitle: str | None = None):
        self.title = title
        self._parts: list[str] = [f"<h1>{html.escape(title)}</h1>"]
        if subtitle:
            self._parts.append(f"<p class='muted'>{html.escape(subtitle)}</p>")

    def heading(self, text: str, level: int = 2) -> "Report":
        return self.html(f"<h{level}>{html.escape(tr(text))}</h{level}>")

    def text(self, text: str, cls: str | None = None) -> "Report":
        c = f" class='{cls}'" if cls else ""
        return self.html(f"<p{c}>{html.escape(text)}</p>")

    def note(self, text: str) -> "Report":
        return self.text(text, cls="note")

    def html(self, raw: str) -> "Report":
        """Raw HTML, for callers that know what they are doing (links between reports); every part is added here."""
        self._parts.append(raw)
        return self

    def table(self, rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> "Report":
        if not rows:
            return self
        cols = list(columns or rows[0].keys())
        head = "".join(f"<th>{html.escape(tr(str(c)))}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c, ''))}</td>" for c in cols) + "</tr>" for r in rows)
        return self.html(f"<table><tr>{head}</tr>{body}</table>")

    def image(self, src: Any, caption: str | None = None) -> "Report":
        caption = tr(caption) if caption else caption
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        return self.html(f"<figure><img src='{png_data_uri(src)}' alt='{html.escape(caption or '')}'>{cap}</figure>")

    def link(self, href: str, text: str) -> "Report":
        """A relative link to another report; keep ``href`` relative so the folder can move."""
        return self.html(f"<p><a href='{html.escape(href)}'>{html.escape(text)}</a></p>")

    def render(self) -> str:
        return (
            f"<!doctype html><html lang='{current_lang()}'><head><meta charset='utf-8'>"
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(self._parts)
            + "</body></html>\n"
        )

    def write(self, path: str | os.PathLike) -> Path:
        return atomic_write_text(path, self.render())
