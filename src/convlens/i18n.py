"""Languages: English by default, Korean (the chapter's own notes) with ``--lang ko`` or
``CONVLENS_LANG=ko``.

One table of messages keyed by a short id; :func:`t` looks one up in the current language,
falling back to English. Reports, figure labels and the browser explorer all read from here, so a
term (합성곱, 특성 맵 ...) is translated once.
"""
from __future__ import annotations

import os

LANGS: tuple[str, ...] = ("en", "ko")

#: message id -> {lang: text}. Text may hold ``str.format`` fields.
MESSAGES: dict[str, dict[str, str]] = {
    "convolution": {"en": "convolution", "ko": "합성곱"},
    "pooling": {"en": "pooling", "ko": "풀링"},
    "feature_map": {"en": "feature map", "ko": "특성 맵"},
    "feature_maps": {"en": "feature maps", "ko": "특성 맵"},
    "filters": {"en": "filters", "ko": "필터"},
    "transfer_learning": {"en": "transfer learning", "ko": "전이 학습"},
    "feature_extraction": {"en": "feature extraction", "ko": "특성 추출"},
    "fine_tuning": {"en": "fine-tuning", "ko": "미세 조정"},
    "graph_convolution": {"en": "graph convolution", "ko": "그래프 합성곱"},
    "class_activation_map": {"en": "class activation map", "ko": "클래스 활성화 맵"},
    "epoch": {"en": "epoch", "ko": "에포크"},
    "accuracy": {"en": "accuracy", "ko": "정확도"},
    "loss": {"en": "cross-entropy loss", "ko": "교차 엔트로피 손실"},
    "train": {"en": "train", "ko": "훈련"},
    "val": {"en": "val", "ko": "검증"},
    "test": {"en": "test", "ko": "테스트"},
}

_current: str | None = None


def current_lang() -> str:
    """The language in use: :func:`set_lang`'s, else ``$CONVLENS_LANG``, else English."""
    lang = _current or os.environ.get("CONVLENS_LANG", "en")
    return lang if lang in LANGS else "en"


def set_lang(lang: str | None) -> None:
    """Choose the language for reports, figures and the explorer (``None``: back to the default)."""
    from .errors import ConvlensError

    if lang is not None and lang not in LANGS:
        raise ConvlensError(f"--lang {lang}: unknown language; choose one of {', '.join(LANGS)}")
    global _current
    _current = lang


def t(key: str, lang: str | None = None, **fields: object) -> str:
    """``MESSAGES[key]`` in ``lang`` (default :func:`current_lang`), English when untranslated."""
    entry = MESSAGES.get(key)
    if entry is None:
        text = key
    else:
        text = entry.get(lang or current_lang()) or entry["en"]
    return text.format(**fields) if fields else text
