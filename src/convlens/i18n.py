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
    # figure labels (reports/plots.py)
    "train_loss": {"en": "train loss", "ko": "훈련 손실"},
    "predicted": {"en": "predicted", "ko": "예측"},
    "true": {"en": "true", "ko": "정답"},
    "share_of_true_class": {"en": "share of true class", "ko": "정답 클래스 중 비율"},
    "count": {"en": "count", "ko": "개수"},
    "confusion_matrix": {"en": "confusion matrix", "ko": "혼동 행렬"},
    "per_class_accuracy": {"en": "per-class accuracy", "ko": "클래스별 정확도"},
    "mean_value": {"en": "mean {value}", "ko": "평균 {value}"},
    "feature_maps_low_high": {"en": "feature maps, low -> high level", "ko": "특성 맵, 저수준 -> 고수준"},
    "normalized_adjacency": {"en": "normalized adjacency", "ko": "정규화된 인접 행렬"},
    "adjacency": {"en": "adjacency", "ko": "인접 행렬"},
    "feature": {"en": "feature", "ko": "특성"},
    "node_sorted": {"en": "node (sorted by class)", "ko": "노드 (클래스 순)"},
    # report headings and captions: Report passes every heading, caption and column through tr()
    "h_result": {"en": "Result", "ko": "결과"},
    "h_learning_curves": {"en": "Learning curves", "ko": "학습 곡선"},
    "h_per_epoch": {"en": "Per-epoch metrics", "ko": "에포크별 지표"},
    "h_wrong": {"en": "Where it goes wrong", "ko": "어디서 틀리는가"},
    "h_recipe": {"en": "Recipe", "ko": "학습 설정"},
    "h_versions": {"en": "Versions", "ko": "버전"},
    "h_prediction": {"en": "Prediction", "ko": "예측"},
    "h_skipped": {"en": "Skipped files", "ko": "건너뛴 파일"},
    "skipped_more": {"en": "... and {n} more (summary.json lists them all)", "ko": "... 외 {n}개 (summary.json에 모두 있습니다)"},
    "h_feature_maps_by_stage": {"en": "Feature maps by stage (low -> high level)", "ko": "단계별 특성 맵 (저수준 -> 고수준)"},
    "c_curves": {"en": "loss and accuracy per epoch (val picks the best epoch; test is only reported)",
                 "ko": "에포크별 손실과 정확도 (최적 에포크는 검증 데이터로 고르고, 테스트는 보고만 합니다)"},
    "c_head_curves": {"en": "loss and accuracy per epoch of the head (val picks the best epoch; test is only reported)",
                      "ko": "분류기 헤드의 에포크별 손실과 정확도 (최적 에포크는 검증 데이터로 고르고, 테스트는 보고만 합니다)"},
    "c_confusion": {"en": "confusion matrix (rows: true class)", "ko": "혼동 행렬 (행: 정답 클래스)"},
    "c_per_class": {"en": "accuracy per class", "ko": "클래스별 정확도"},
    "c_fixed_images": {"en": "20 fixed test images", "ko": "고정된 테스트 이미지 20장"},
    "c_wrong": {"en": "the most confidently wrong", "ko": "가장 확신하며 틀린 이미지"},
    "c_compare": {"en": "training loss and test accuracy per epoch", "ko": "에포크별 훈련 손실과 테스트 정확도"},
    "col_model": {"en": "model", "ko": "모델"},
    "col_test_accuracy": {"en": "test accuracy", "ko": "테스트 정확도"},
    "col_best_epoch": {"en": "best epoch (val)", "ko": "최적 에포크 (검증)"},
    "col_test_acc_best": {"en": "test acc at best epoch", "ko": "최적 에포크의 테스트 정확도"},
    "col_parameters": {"en": "parameters", "ko": "파라미터 수"},
    "col_train_seconds": {"en": "train seconds", "ko": "훈련 시간 (초)"},
    "col_images_per_s": {"en": "train images/s", "ko": "초당 훈련 이미지"},
    "col_what": {"en": "what", "ko": "항목"},
    "col_value": {"en": "value", "ko": "값"},
    "col_setting": {"en": "setting", "ko": "설정"},
    "col_train_loss": {"en": "train_loss", "ko": "훈련 손실"},
    "col_train_acc": {"en": "train_acc", "ko": "훈련 정확도"},
    "col_val_acc": {"en": "val_acc", "ko": "검증 정확도"},
    "col_test_acc": {"en": "test_acc", "ko": "테스트 정확도"},
    "col_seconds": {"en": "seconds", "ko": "초"},
    "col_images_per_s_short": {"en": "images_per_s", "ko": "초당 이미지"},
}

_current: str | None = None


def current_lang() -> str:
    """The language in use: :func:`set_lang`'s, else ``$CONVLENS_LANG``, else English."""
    lang = _current or os.environ.get("CONVLENS_LANG", "en")
    return lang if lang in LANGS else "en"


def check_lang(lang: str | None) -> str | None:
    """``lang`` if it is one of :data:`LANGS` (or ``None``), else one line saying which are."""
    from .errors import ConvlensError

    if lang is not None and lang not in LANGS:
        raise ConvlensError(f"--lang {lang}: unknown language; choose one of {', '.join(LANGS)}")
    return lang


def set_lang(lang: str | None) -> None:
    """Choose the language for reports, figures and the explorer (``None``: back to the default)."""
    global _current
    _current = check_lang(lang)


def t(key: str, lang: str | None = None, **fields: object) -> str:
    """``MESSAGES[key]`` in ``lang`` (default :func:`current_lang`), English when untranslated."""
    entry = MESSAGES.get(key)
    text = key if entry is None else entry.get(lang or current_lang()) or entry["en"]
    return text.format(**fields) if fields else text


_BY_ENGLISH: dict[str, str] = {}
_BUILT_FOR = [0]  # len(MESSAGES) when _BY_ENGLISH was built


def tr(text: str, lang: str | None = None) -> str:
    """``text`` (an English phrase) in ``lang``: the translation of the :data:`MESSAGES` entry
    whose English is exactly ``text``, else ``text`` unchanged. Lets the report writer translate
    the headings and captions its callers pass in without each caller knowing message ids."""
    lang = lang or current_lang()
    if lang == "en":
        return text
    if _BUILT_FOR[0] != len(MESSAGES):  # built on first use; rebuilt if MESSAGES grew
        _BY_ENGLISH.clear()
        _BY_ENGLISH.update({entry["en"]: key for key, entry in MESSAGES.items()})
        _BUILT_FOR[0] = len(MESSAGES)
    key = _BY_ENGLISH.get(text)
    return t(key, lang) if key else text
