"""Korean (--lang ko / CONVLENS_LANG=ko): labels from the chapter's terms, a CJK font, no
missing glyphs; English unchanged."""
from __future__ import annotations

import io
import logging
import warnings

import matplotlib
import numpy as np
import pytest

from convlens.cli import build_parser, main
from convlens.figures import has_hangul, use_cjk_font
from convlens.i18n import MESSAGES, current_lang, set_lang, t, tr
from convlens.reports import Report, plot_confusion_matrix, plot_curves


@pytest.fixture
def korean():
    before = list(matplotlib.rcParams["font.family"])
    set_lang("ko")
    yield
    set_lang(None)
    matplotlib.rcParams["font.family"] = before


def _glyph_warnings(fig) -> list[str]:
    """Render ``fig`` and return matplotlib's missing-glyph complaints (warnings and log)."""
    import matplotlib.pyplot as plt

    records: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Catch()
    logging.getLogger("matplotlib").addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fig.savefig(io.BytesIO(), format="png")
            fig.savefig(io.BytesIO(), format="svg")
    finally:
        logging.getLogger("matplotlib").removeHandler(handler)
        plt.close(fig)
    return [m for m in records + [str(w.message) for w in caught] if "missing from font" in m]


def _history():
    return [{"epoch": e, "train_loss": 1.0 / e, "train_acc": 0.5 + e / 20, "val_acc": 0.5 + e / 25, "test_acc": 0.5 + e / 30}
            for e in (1, 2, 3)]


def test_korean_figure_has_every_glyph(korean):
    names = ["티셔츠", "바지", "풀오버", "드레스", "코트"]
    cm = np.diag([9, 8, 7, 6, 5]) + 1
    fig = plot_confusion_matrix(cm, names, title="합성곱 신경망: 혼동 행렬")
    texts = [tx.get_text() for ax in fig.axes for tx in (ax.xaxis.label, ax.yaxis.label, ax.title)]
    assert "예측" in texts and "정답" in texts  # the labels are Korean ...
    assert _glyph_warnings(fig) == []          # ... and every glyph is drawn
    fig = plot_curves(_history(), title="특성 맵과 풀링")
    assert fig.axes[0].get_xlabel() == "에포크" and fig.axes[1].get_ylabel() == "정확도"
    assert [tx.get_text() for tx in fig.axes[1].get_legend().get_texts()] == ["훈련", "검증", "테스트"]
    assert _glyph_warnings(fig) == []


def test_without_the_cjk_font_the_check_would_fail():
    """The glyph check is real: DejaVu Sans alone lacks Hangul and matplotlib says so."""
    import matplotlib.pyplot as plt

    before = list(matplotlib.rcParams["font.family"])
    matplotlib.rcParams["font.family"] = ["DejaVu Sans"]
    try:
        fig, ax = plt.subplots()
        ax.set_title("합성곱")
        assert _glyph_warnings(fig)
    finally:
        matplotlib.rcParams["font.family"] = before


def test_hangul_class_names_get_the_font_in_english_mode():
    before = list(matplotlib.rcParams["font.family"])
    try:
        assert current_lang() == "en"
        assert use_cjk_font(["cat", "dog"]) is None
        fig = plot_confusion_matrix(np.eye(2, dtype=int) * 3, ["고양이", "개"])
        assert fig.axes[0].get_xlabel() == "predicted"
        assert _glyph_warnings(fig) == []
    finally:
        matplotlib.rcParams["font.family"] = before


def test_chapter_terms_and_phrases():
    assert t("convolution", "ko") == "합성곱" and t("fine_tuning", "ko") == "미세 조정"
    assert t("graph_convolution", "ko") == "그래프 합성곱" and t("class_activation_map", "ko") == "클래스 활성화 맵"
    assert tr("Learning curves", "ko") == "학습 곡선" and tr("Learning curves", "en") == "Learning curves"
    assert tr("a phrase nobody translated", "ko") == "a phrase nobody translated"
    assert all(has_hangul(entry["ko"]) for entry in MESSAGES.values()), "every message has its Korean"
    assert t("mean_value", "ko", value="90.0%") == "평균 90.0%"


def test_report_in_korean(korean, tmp_path):
    r = Report("cnn")
    r.heading("Learning curves").table([{"model": "cnn", "test accuracy": 0.9}]).image(plot_curves(_history()), "accuracy per class")
    page = r.write(tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<html lang='ko'>" in page
    for ko in ("학습 곡선", "<th>모델</th>", "<th>테스트 정확도</th>", "클래스별 정확도"):
        assert ko in page


def test_lang_flag(monkeypatch, capsys):
    assert build_parser().parse_args(["--lang", "ko", "shapes", "alexnet"]).lang == "ko"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--lang", "fr", "shapes", "alexnet"])
    seen = {}

    def spy(args):
        seen["lang"] = current_lang()
        return 0

    from convlens import cli

    parser = build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser.set_defaults(func=spy)
    try:
        assert main(["--lang", "ko"]) == 0
        assert seen["lang"] == "ko"
    finally:
        set_lang(None)
    monkeypatch.setenv("CONVLENS_LANG", "ko")
    assert current_lang() == "ko"


def test_graph_matrices_figure_in_korean(korean):
    from convlens.graph import load_karate, plot_matrices

    fig = plot_matrices(load_karate(), title="가라테 클럽: 그래프 합성곱")
    assert fig.axes[0].get_ylabel() == "노드 (클래스 순)"
    assert _glyph_warnings(fig) == []
