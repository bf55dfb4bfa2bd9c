# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3. Transfer learning: cats and dogs from an ImageNet network
# **전이 학습: ImageNet으로 학습한 신경망으로 고양이와 개 분류**
#
# 385 photos are far too few to train a CNN from scratch. A network trained on ImageNet's 1.2
# million photos has already learnt edges, textures and parts; transfer learning reuses those
# features and trains only what is new.
#
# 사진 385장으로는 CNN을 처음부터 학습하기 어렵습니다. ImageNet으로 학습된 신경망의 특성을 재사용하고
# 새로운 부분만 학습하는 것이 전이 학습입니다.

# %%
# Setup. On Colab: installs convlens (set CONVLENS_PIP to another source if you forked it) and
# looks for the chapter's data in Drive. Where convlens is importable (a local checkout), it does nothing.
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("convlens") is None:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q",
                           os.environ.get("CONVLENS_PIP", "convlens @ git+https://github.com/convlens/convlens")])
if "google.colab" in sys.modules:
    os.environ.setdefault("CONVLENS_SHARED_DATA", "/content/drive/MyDrive/convlens-data")
SMOKE = os.environ.get("CONVLENS_SMOKE") == "1"  # the tests' quick mode: less data, fewer epochs

# %% [markdown]
# ## The chapter's data (교재의 데이터)
# 182 cat and 203 dog photos for training, 49 + 49 for testing (six of them are BMP files named
# `.jpg`: convlens reads them). On Colab, put the chapter's `data` folder in Drive as
# `convlens-data` (or set `CONVLENS_SHARED_DATA`).

# %%
from convlens.tour import find_shared_data

DATA = find_shared_data()
assert DATA is not None, "the chapter's data folder was not found: set CONVLENS_SHARED_DATA"
CATANDDOG, CAT = DATA / "catanddog", DATA / "images" / "cat.jpg"
print("data:", CATANDDOG)

# %% [markdown]
# ## Feature extraction: a frozen ImageNet backbone + a new head (특성 추출)
# EfficientNet-Lite0, trained on ImageNet, turns each photo into 1,280 numbers once (cached on
# disk); only a linear head is trained on them, 13 epochs as in the chapter. The best epoch is
# chosen on a validation split carved from the training photos, never on the test set.
#
# 사전 학습된 합성곱 층은 그대로 두고(동결) 새 분류기만 학습합니다. 특성은 이미지마다 한 번만 계산해 저장합니다.

# %%
from convlens.transfer import TransferConfig, transfer

cfg = TransferConfig(data=str(CATANDDOG), strategy="feature-extract", epochs=4 if SMOKE else 13,
                     image_size=112 if SMOKE else None,  # smoke: a quarter of the pixels
                     limit_train=80 if SMOKE else None, limit_test=40 if SMOKE else None,
                     out="runs/notebooks", progress=not SMOKE)  # a new run folder each time
res = transfer(cfg)
print(f"feature extraction: test accuracy {res.test_acc:.2%} on {res.summary['test_images']} photos "
      f"(best epoch {res.best_epoch}, chosen on validation); {res.seconds:.1f} s")

# %%
from convlens.reports import plot_curves

fig = plot_curves(res.history, title="EfficientNet-Lite0 features + linear head on cats and dogs")

# %% [markdown]
# ## Predict a new photo (새 사진 예측)
# The run folder holds everything needed: `predict` rebuilds backbone + head from it.

# %%
from convlens.transfer import predict

for label, prob in predict(res.run.path, [CAT])[0].top(2):
    print(f"cat.jpg: {label} {prob:.1%}")

# %% [markdown]
# ## Fine-tuning: let the last stages learn too (미세 조정)
# With more data, or data unlike ImageNet, unfreezing the last stages of the backbone (at a
# tenth of the head's learning rate; BatchNorm of frozen layers kept in eval mode) does better.
# `strategy="auto"` measures the data set's size and its similarity to ImageNet and chooses.
# Fine-tuning is slow on a CPU, so the smoke mode skips it. (Smoke mode also runs the backbone
# at 112 px instead of 224 px, and trains the head on 80 photos.)

# %%
if not SMOKE:
    ft = transfer(TransferConfig(data=str(CATANDDOG), strategy="fine-tune", unfreeze=2, epochs=3,
                                 out="runs/notebooks"))
    print(f"fine-tuning the last 2 stages: test accuracy {ft.test_acc:.2%}")
    fig = plot_curves(ft.history, title="fine-tuning the last 2 stages")

# %% [markdown]
# ## Where the chapter's code is wrong (교재 코드의 문제)
# - No ImageNet normalisation for a pretrained backbone (convlens uses the weights' own mean/std).
# - The "frozen" backbone stays in train mode, so BatchNorm statistics keep changing.
# - `preds[preds >= 0.5] = 1` is applied to argmax class indices: it does nothing.
# - The best of 13 checkpoints is chosen **on the test set** (one image = 1.02 points).
# - The prediction figure is drawn from a second, untrained model.
# - The backbone is recomputed for every image in every epoch (convlens caches the features:
#   a second run never builds the network).
#
# 교재 코드는 테스트 데이터로 최적 체크포인트를 고르고, 동결한 백본을 훈련 모드로 두며, 정규화를 빠뜨립니다.
