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
# # 5. Graph convolutional networks
# **그래프 합성곱 신경망 (GCN)**
#
# An image is a grid graph; a convolution mixes each pixel with its neighbours. A graph
# convolution does the same on any graph: each node averages its neighbours' features (and its
# own), then a shared weight matrix transforms them:
# $H' = \sigma(\hat A H W)$ with $\hat A = D^{-1/2}(A + I)D^{-1/2}$ (Kipf & Welling, 2017).
#
# 그래프 합성곱은 각 노드가 이웃(과 자신)의 특성을 평균한 뒤 공유 가중치 $W$ 로 변환합니다:
# $H' = \sigma(\hat A H W)$, $\hat A = D^{-1/2}(A + I)D^{-1/2}$.

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
# ## The karate club: A, Â and X made visible (인접 행렬 A, 정규화된 Â, 특성 행렬 X)
# Zachary's karate club: 34 members, 78 friendships, split into two clubs. It has no node
# features, so X is the identity.

# %%
from convlens.graph import describe_matrices, graph_matrices, load_karate, plot_graph, plot_matrices

karate = load_karate()
print(describe_matrices(karate, max_nodes=8))
fig = plot_matrices(karate, title="karate club")
fig = plot_graph(karate, title="karate club: colour = the club each member joined")

# %% [markdown]
# ## One graph convolution by hand (그래프 합성곱 한 층을 직접 계산)
# `DenseGCNLayer` is the formula in four lines of PyTorch; it gives exactly what PyTorch
# Geometric's `GCNConv` gives with the same weights.

# %%
import torch
from torch_geometric.nn import GCNConv

from convlens.graph import DenseGCNLayer

m = graph_matrices(karate)
torch.manual_seed(0)
conv = GCNConv(karate.num_nodes, 4)
dense = DenseGCNLayer(karate.num_nodes, 4).copy_from_gcnconv(conv)
h_dense = dense(m["X"], m["A_hat"])                      # (34, 34) @ ((34, 34) @ (34, 4)) -> (34, 4)
h_pyg = conv(m["X"], karate.edge_index)
print("H' shape", tuple(h_dense.shape), "| same as GCNConv:", torch.allclose(h_dense, h_pyg, atol=1e-5))

# %% [markdown]
# ## Node classification (노드 분류)
# Karate: one labelled member per club, the GCN labels the other 32. Cora: 2,708 papers linked
# by citations, 140 labelled, 7 topics (Kipf & Welling's public split). Smoke mode trains for
# 50 epochs instead of 200.

# %%
from convlens.graph import train

EPOCHS = 50 if SMOKE else None  # None: the paper's 200
k = train(data="karate", out="runs/notebooks/gcn-karate", progress=False, epochs=EPOCHS)
print(f"karate: {k['test_acc']:.1%} of the {k['num_test']} unlabelled members right")
# the run folder also holds a 2-D map of the hidden features: t-SNE (seconds), or PCA in smoke mode
cora = train(data="cora", out="runs/notebooks/gcn-cora", progress=False, epochs=EPOCHS, embedding="pca" if SMOKE else "tsne")
print(f"cora: test accuracy {cora['test_acc']:.1%} on {cora['num_test']:,} papers ({cora['train_seconds']:.1f} s)")

# %%
import json
from pathlib import Path

from convlens.reports import plot_curves

history = [json.loads(line) for line in (Path(cora["run"]) / "metrics.jsonl").read_text().splitlines()]
fig = plot_curves(history, title="GCN on Cora")

# %% [markdown]
# The papers' hidden GCN features (16 numbers each) mapped to 2-D, coloured by their true topic:
# one graph convolution already separates the topics (the test papers are marked).

# %%
from IPython.display import Image

Image(filename=str(Path(cora["run"]) / "plots" / "embedding.png"), width=600)

# %% [markdown]
# ## Graph classification: molecules (그래프 분류: 분자)
# MUTAG: 188 molecules, is each one mutagenic? A GCN per molecule, then a mean over its atoms
# (readout) gives one vector per graph. 10-fold cross-validation; smoke mode: 3 folds, 20 epochs.

# %%
mutag = train(data="mutag", out="runs/notebooks/gcn-mutag", progress=False,
              folds=3 if SMOKE else 10, epochs=20 if SMOKE else None)
print(f"mutag: {mutag['cv_mean_acc']:.1%} ± {mutag['cv_std_acc']:.1%} over the folds")
