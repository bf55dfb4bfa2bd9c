"""The explorer's words, in English and Korean, registered into :data:`convlens.i18n.MESSAGES`.

Registered from here (``MESSAGES.setdefault``) rather than written into ``i18n.py`` so the
explorer's many UI strings live beside the page that shows them; the chapter's terms
(합성곱, 풀링, 특성 맵, 전이 학습, 미세 조정, 그래프 합성곱, 클래스 활성화 맵) are the ones
``i18n.py`` already uses. The page asks ``/api/messages?lang=ko`` for the whole table.
"""
from __future__ import annotations

from ..i18n import LANGS, MESSAGES, current_lang

UI: dict[str, dict[str, str]] = {
    "ui_title": {"en": "convlens explorer", "ko": "convlens 탐색기"},
    "ui_tab_image": {"en": "Image", "ko": "이미지"},
    "ui_tab_runs": {"en": "Runs", "ko": "실행 기록"},
    "ui_tab_layers": {"en": "Layers", "ko": "층"},
    "ui_tab_graphs": {"en": "Graphs", "ko": "그래프"},
    "ui_drop": {"en": "Drop an image here, or choose one", "ko": "이미지를 여기에 끌어 놓거나 선택하세요"},
    "ui_model": {"en": "model", "ko": "모델"},
    "ui_pretrained": {"en": "pretrained backbone (ImageNet)", "ko": "사전 학습된 백본 (ImageNet)"},
    "ui_run_model": {"en": "model of run", "ko": "실행 기록의 모델"},
    "ui_cam_layer": {"en": "Grad-CAM layer", "ko": "Grad-CAM 층"},
    "ui_stages": {"en": "stages (low to high level)", "ko": "단계 (저수준에서 고수준으로)"},
    "ui_all_layers": {"en": "every layer with a feature map", "ko": "특성 맵이 있는 모든 층"},
    "ui_explain": {"en": "Explain", "ko": "설명하기"},
    "ui_top5": {"en": "top-5 predictions", "ko": "상위 5개 예측"},
    "ui_cam": {"en": "class activation map (Grad-CAM)", "ko": "클래스 활성화 맵 (Grad-CAM)"},
    "ui_feature_maps": {"en": "feature maps by stage, strongest channels first",
                        "ko": "단계별 특성 맵, 가장 강한 채널부터"},
    "ui_filters": {"en": "first-layer filters", "ko": "첫 번째 합성곱 층의 필터"},
    "ui_loading_model": {"en": "loading the model (once)...", "ko": "모델을 불러오는 중 (한 번만)..."},
    "ui_working": {"en": "working...", "ko": "처리 중..."},
    "ui_seconds": {"en": "{s:.2f} s on the server", "ko": "서버에서 {s:.2f}초"},
    "ui_runs_in": {"en": "runs in {path}", "ko": "{path}의 실행 기록"},
    "ui_no_runs": {"en": "No run in this folder yet: train one below or run `convlens train` with --out pointing here.",
                   "ko": "이 폴더에는 아직 실행 기록이 없습니다. 아래에서 훈련을 시작하거나 --out 으로 이 폴더를 지정해 `convlens train`을 실행하세요."},
    "ui_curves": {"en": "curves", "ko": "학습 곡선"},
    "ui_confusion": {"en": "confusion matrix (rows: true class; click a cell for its test images)",
                     "ko": "혼동 행렬 (행: 실제 클래스, 칸을 누르면 해당 테스트 이미지)"},
    "ui_wrong": {"en": "most confidently wrong test images", "ko": "가장 확신하며 틀린 테스트 이미지"},
    "ui_config": {"en": "config", "ko": "설정"},
    "ui_live": {"en": "live progress", "ko": "실시간 진행 상황"},
    "ui_no_predictions": {"en": "This run's per-image test predictions are not available: {reason}",
                          "ko": "이 실행 기록의 이미지별 테스트 예측을 볼 수 없습니다: {reason}"},
    "ui_compute_predictions": {"en": "Evaluate the test split (per-image predictions)",
                               "ko": "테스트 분할 평가 (이미지별 예측)"},
    "ui_train": {"en": "Train a chapter recipe", "ko": "챕터의 레시피로 훈련"},
    "ui_start": {"en": "Start", "ko": "시작"},
    "ui_layer_table": {"en": "layer table (shapes, parameters, FLOPs)", "ko": "층 표 (크기, 파라미터, FLOPs)"},
    "ui_conv_arith": {"en": "convolution arithmetic", "ko": "합성곱 연산 크기 계산"},
    "ui_input": {"en": "input W1", "ko": "입력 W1"},
    "ui_kernel": {"en": "kernel F", "ko": "커널 F"},
    "ui_stride": {"en": "stride S", "ko": "스트라이드 S"},
    "ui_padding": {"en": "padding P", "ko": "패딩 P"},
    "ui_show": {"en": "Show", "ko": "보기"},
    "ui_graph": {"en": "graph", "ko": "그래프"},
    "ui_gcn_layer": {"en": "one graph convolution layer: H' = ReLU(Â X W)",
                     "ko": "그래프 합성곱 층 하나: H' = ReLU(Â X W)"},
    "ui_bad_upload": {"en": "That upload was refused", "ko": "업로드가 거부되었습니다"},
    "ui_lang": {"en": "language", "ko": "언어"},
    # server messages (one line, say what to do)
    "err_empty": {"en": "the file is empty (0 bytes); choose a photo (.jpg, .png, ...)",
                  "ko": "파일이 비어 있습니다 (0바이트). 사진(.jpg, .png 등)을 선택하세요"},
    "err_too_big": {"en": "the file is {size}; the limit is {limit}: choose a smaller image",
                    "ko": "파일 크기가 {size}입니다. 한도는 {limit}이니 더 작은 이미지를 선택하세요"},
    "err_not_image": {"en": "{name} is not an image (PIL cannot read it); choose a photo (.jpg, .png, ...)",
                      "ko": "{name}은(는) 이미지가 아닙니다 (PIL이 읽을 수 없음). 사진(.jpg, .png 등)을 선택하세요"},
    "err_format": {"en": "{name} is a {fmt} file; upload JPEG, PNG, GIF, BMP, WebP or TIFF",
                   "ko": "{name}은(는) {fmt} 파일입니다. JPEG, PNG, GIF, BMP, WebP, TIFF를 올리세요"},
    "err_pixels": {"en": "{name} is {mp:.1f} megapixels ({w} x {h}); the limit is {limit:.0f}: resize it first",
                   "ko": "{name}은(는) {mp:.1f}메가픽셀({w} x {h})입니다. 한도는 {limit:.0f}이니 먼저 크기를 줄이세요"},
    "err_bomb": {"en": "{name} is over {limit:.0f} megapixels (PIL's decompression-bomb guard refused even its header): resize it first",
                 "ko": "{name}은(는) {limit:.0f}메가픽셀을 넘습니다 (PIL의 압축 폭탄 방어가 헤더부터 거부함). 먼저 크기를 줄이세요"},
    "err_corrupt": {"en": "{name}: truncated or corrupt image ({why}); choose another file",
                    "ko": "{name}: 잘리거나 손상된 이미지입니다 ({why}). 다른 파일을 선택하세요"},
    "err_no_file": {"en": "no file in the request: send the image as form field 'image'",
                    "ko": "요청에 파일이 없습니다. 이미지를 'image' 필드로 보내세요"},
    "err_busy": {"en": "the server is busy ({n} requests waiting); try again in a moment",
                 "ko": "서버가 바쁩니다 (대기 중 요청 {n}개). 잠시 후 다시 시도하세요"},
}

for _key, _texts in UI.items():
    MESSAGES.setdefault(_key, _texts)


def ui_messages(lang: str | None = None) -> dict[str, str]:
    """Every UI string (and the chapter's terms) in ``lang`` (unknown -> the current language)."""
    lang = lang if lang in LANGS else current_lang()
    return {k: (v.get(lang) or v["en"]) for k, v in MESSAGES.items()}
