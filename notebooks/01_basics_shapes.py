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
# # 1. CNN basics: output sizes, parameters, convolution and pooling
# **합성곱 신경망의 기초: 출력 크기, 파라미터 수, 합성곱과 풀링**
#
# Every convolution layer turns a $W_1 \times H_1 \times D_1$ input into a
# $W_2 \times H_2 \times K$ output with
# $W_2 = (W_1 - F + 2P)/S + 1$ ($F$ filter size, $P$ padding, $S$ stride, $K$ filters), and holds
# $F \cdot F \cdot D_1 \cdot K$ weights plus $K$ biases.
#
# 합성곱 층의 출력 크기는 $W_2 = (W_1 - F + 2P)/S + 1$ 이고, 파라미터 수는 가중치 $F \cdot F \cdot D_1 \cdot K$ 에
# 편향 $K$ 를 더한 값입니다. 이 노트북은 그 공식을 AlexNet 전체에 적용하고, PyTorch가 실제로 만든 층과 대조합니다.

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
# ## The formula, one layer at a time (공식을 한 층씩)
# The chapter's example: a 32x32x3 input, 3 filters of 5x5, stride 1, padding 2. `conv_layer`
# shows the arithmetic and checks it against a real `torch.nn.Conv2d`.

# %%
from convlens.shapes import conv_layer, output_size, pool_layer

layer = conv_layer((32, 32, 3), filters=3, kernel=5, stride=1, padding=2)
for step in layer["steps"]:
    print(step["arithmetic"])
print("weights:", layer["weights_arithmetic"], "+", layer["biases"], "biases =", layer["params"], "parameters")
print("PyTorch agrees:", layer["torch_output"] == layer["output"] and layer["torch_params"] == layer["params"])
print(output_size(227, kernel=11, stride=4)["arithmetic"])         # AlexNet's first layer
print("pooling 55x55x96, 3x3 stride 2 ->", pool_layer((55, 55, 96), kernel=3, stride=2)["output"])

# %% [markdown]
# ## AlexNet, layer by layer (AlexNet의 층별 크기와 파라미터)
# The chapter's table: every row computed with the formula above and checked against the
# shapes PyTorch produces. The chapter's AlexNet (227x227 input, 96-256-384-384-256 filters)
# has **62,378,344** parameters; torchvision's variant differs (fewer filters in the first
# layers, adaptive pooling), so the two totals differ.

# %%
from convlens.shapes import alexnet_tables
from convlens.shapes.plots import plot_alexnet

tables = alexnet_tables()
chapter = tables["chapter"]
for row in chapter["rows"]:
    print(f"{row['layer']:>8}  {row['output']:>11}  {row['params']:>12,}  {row.get('arithmetic', '')}")
print(f"AlexNet (chapter): {chapter['totals']['params']:,} parameters; "
      f"torchvision's variant: {tables['torchvision']['totals']['params']:,}")
fig = plot_alexnet(tables)  # figures show inline at the end of the cell

# %% [markdown]
# ## Any model's table (어떤 모델이든 층별 표로)
# `model_table` measures every layer of a real model: output shape, parameters, multiply-adds
# and receptive field. Here torchvision's ResNet-18 on a 224x224 image.

# %%
from convlens.shapes import model_table
from convlens.shapes.plots import plot_layer_table

resnet = model_table("tv/resnet18")
print(f"{resnet.model_name}: {resnet.totals['params']:,} parameters, {resnet.totals['macs'] / 1e9:.2f} G multiply-adds per image")
fig = plot_layer_table(resnet)

# %% [markdown]
# ## Convolution and pooling on small arrays (작은 배열로 본 합성곱과 풀링)
# The chapter's hand-worked examples, computed by PyTorch: a 1-D convolution, zero padding,
# max pooling (풀링), and a 1x1 convolution mixing channels.

# %%
import matplotlib.pyplot as plt

from convlens.shapes import plot_demo, run_demo

for name in ("1d", "padding", "pool", "1x1"):
    demo = run_demo(name)
    print(demo["title"])
    fig = plot_demo(demo)
    plt.show()  # show each figure under its title

# %% [markdown]
# ## Where the chapter's code differs
# The chapter computes these sizes by hand; here every number is checked against the layer
# PyTorch actually builds (`formula_checked` below), so a typo in a table cannot survive.

# %%
print("layers checked against PyTorch:", chapter["totals"]["formula_checked"],
      "mismatches:", chapter["totals"]["formula_mismatches"])
