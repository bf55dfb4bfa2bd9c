"""Matplotlib set-up shared by every figure convlens draws: the backend, and a CJK font for
Korean labels (``--lang ko``, or class names in Hangul).

The CJK font is added as a *fallback* after the current family (matplotlib >= 3.6 picks a
font per glyph from the ``font.family`` list), so Latin text keeps its look and only the
glyphs DejaVu Sans lacks (한글) come from Noto Sans CJK (Debian's ``fonts-noto-cjk``).
"""
from __future__ import annotations

import os
from collections.abc import Iterable

#: Families searched, best first. ``NotoSansCJK-Regular.ttc`` holds every CJK face, but
#: matplotlib reads only its first face and names it "Noto Sans CJK JP"; its Hangul is the same.
CJK_FAMILIES: tuple[str, ...] = ("Noto Sans CJK KR", "Noto Sans CJK JP", "Noto Sans KR", "NanumGothic",
                                 "Malgun Gothic", "AppleGothic")


def headless_backend() -> None:
    """Draw off-screen (Agg) unless the caller chose a backend: a Jupyter kernel sets
    ``MPLBACKEND`` to its inline backend, which must survive so figures show in the notebook."""
    if not os.environ.get("MPLBACKEND"):
        import matplotlib

        matplotlib.use("Agg", force=False)


def has_hangul(*texts: object) -> bool:
    """True when any text holds a Hangul syllable or jamo."""
    return any("\uac00" <= ch <= "\ud7a3" or "\u1100" <= ch <= "\u11ff" or "\u3130" <= ch <= "\u318f"
               for text in texts for ch in str(text))


def cjk_family() -> str | None:
    """The first installed family of :data:`CJK_FAMILIES`, or ``None``."""
    from matplotlib import font_manager

    def first() -> str | None:
        installed = {f.name for f in font_manager.fontManager.ttflist}
        return next((name for name in CJK_FAMILIES if name in installed), None)

    found = first()
    if found is None and not _scanned:
        # matplotlib caches its font list once; fonts installed after that (scripts/setup's
        # fonts-noto-cjk on a machine that had matplotlib already) are only found by a rescan
        _scanned.append(True)
        for path in font_manager.findSystemFonts():
            if "cjk" in os.path.basename(path).lower() or "nanum" in os.path.basename(path).lower():
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):  # an unreadable font file is not ours to fix
                    pass
        found = first()
    return found


_scanned: list[bool] = []


def use_cjk_font(texts: Iterable[object] = ()) -> str | None:
    """Add a CJK fallback font to matplotlib when the language is Korean or ``texts`` hold
    Hangul; returns the family used (``None``: not needed, or none installed -- then
    ``apt-get install fonts-noto-cjk``). Idempotent and cheap: call it before drawing."""
    from .i18n import current_lang

    if current_lang() != "ko" and not has_hangul(*texts):
        return None
    if (family := cjk_family()) is None:
        return None
    import matplotlib

    current = list(matplotlib.rcParams["font.family"])
    if family not in current:  # appended: the first family (and Latin text's look) stays first
        matplotlib.rcParams["font.family"] = current + [family]
    return family
