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
# # 6. Residual networks on CIFAR-10
# **잔차 신경망(ResNet)과 CIFAR-10**
#
# A residual block learns F(x) = H(x) - x and outputs H(x) = F(x) + x: when the best thing a
# block can do is nothing, it only has to push F towards zero. He et al. (2016) showed that a
# deeper *plain* network (the same layers without "+ x") trains to a *higher training error*
# than a shallower one -- the degradation problem -- while ResNets keep improving with depth.
#
# 잔차 블록은 H(x) 대신 F(x) = H(x) - x 를 학습하고 F(x) + x 를 출력합니다. 지름길(shortcut)이 없는
# 깊은 평범한(plain) 신경망은 얕은 것보다 *훈련* 오차가 오히려 큽니다(성능 저하 문제). ResNet은 그렇지 않습니다.

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
# ## The 6n+2 networks (6n+2 층 신경망)
# A 3x3 convolution to 16 channels, three stages of n blocks at 16, 32 and 64 channels
# (32x32, 16x16, 8x8 maps), global average pooling, a 10-way layer. Where a stage halves the
# map and doubles the channels, the shortcut subsamples x and pads zero channels ("option A"):
# no parameters, so each ResNet has exactly as many parameters as its plain twin.

# %%
from convlens.models import create_model
from convlens.shapes import model_table
from convlens.shapes.residual import residual_blocks

for name in ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110"]:
    t = model_table(name, check=False).totals
    print(f"{name}: {t['params']:,} parameters, {t['macs'] / 1e6:.1f}M multiply-adds per image")
for row in residual_blocks(create_model("resnet20"), (3, 32, 32)):
    if row["input"] != row["output"]:
        print(f"{row['block']}: {row['input']} -> {row['output']}, shortcut {row['shortcut']}")

# %% [markdown]
# ## The ImageNet ResNets (ImageNet ResNet 의 연산량)
# The lecture's row: 1.8 / 3.6 / 3.8 / 7.6 / 11.3 G multiply-adds for 18 / 34 / 50 / 101 / 152
# layers. torchvision's ResNet-50 is "v1.5" (stride 2 in the 3x3 convolution of a bottleneck,
# not the first 1x1): 4.1 G.

# %%
for name in ["tv/resnet18", "tv/resnet34", "tv/resnet50", "tv/resnet101", "tv/resnet152"]:
    print(f"{name}: {model_table(name, check=False).totals['macs'] / 1e9:.2f} G multiply-adds")

# %% [markdown]
# ## CIFAR-10 (CIFAR-10 데이터)
# The lecture's own copy, `cifar10-images.tar.gz` (50,000 + 10,000 JPEGs), decoded once into
# a cache. Smoke mode reads 120 images per class and split straight from the archive.

# %%
from convlens.data import DatasetSplits, load_dataset
from convlens.data.cifar10 import read_archive, shared_data_dir
from convlens.reports import plot_prediction_grid

if SMOKE:
    s = read_archive(shared_data_dir() / "cifar10-images.tar.gz", per_class=120)
    data = DatasetSplits(s["train"], s["test"], "cifar10")
else:
    data = load_dataset("cifar10")
print(f"cifar10: {len(data.train):,} training and {len(data.test):,} test images, classes {', '.join(data.classes)}")
idx = list(range(0, len(data.test), len(data.test) // 10))[:10]
fig = plot_prediction_grid(data.test.images[idx].float() / 255, data.test.labels[idx].tolist(),
                           data.test.labels[idx].tolist(), data.classes, ncols=5, title="CIFAR-10 test images")

# %% [markdown]
# ## The degradation problem (성능 저하 문제)
# plain-20 vs plain-56 and ResNet-20 vs ResNet-56, He et al.'s recipe (SGD 0.9, lr 0.1 divided
# by 10 at 50% and 75%, crop + flip), on a CPU-sized budget: 5,000 images for 20 epochs here
# (the paper: 45,000 images, 182 epochs). Training error is measured on the fly, as in the
# paper's Figure 1. The ResNets start each residual branch at zero (`zero_init_residual`: every
# block starts as its shortcut); with He's init a 56-layer ResNet needs far more than this budget
# to catch ResNet-20 (docs/resnet.md). Smoke mode: 300 images, 1 epoch -- too little to show anything.

# %%
from convlens import TrainConfig, train
from convlens.engine.degradation import degradation_verdict, training_error_figure

budget = {"limit_train": 300, "epochs": 1, "val_size": 50, "limit_test": 200} if SMOKE else {"limit_train": 5000, "epochs": 20, "val_size": 500}
histories = {}
for name in ["plain20", "plain56", "resnet20", "resnet56"]:
    cfg = TrainConfig(model=name, out="runs/notebooks", progress=not SMOKE, explicit=("epochs", "val_size"),
                      model_kwargs={"zero_init_residual": True}, **budget)
    res = train(cfg, data=data)
    histories[name] = res.history
    print(f"{name}: final training error {1 - res.history[-1]['train_acc']:.1%}, test accuracy {res.test_acc:.2%}")
for line in degradation_verdict(histories):
    print(line)
fig = training_error_figure(histories)

# %% [markdown]
# ## The fast recipe (빠른 학습 레시피)
# airbench's tricks on a CPU: the first layer set to whiten 2x2 patches and frozen, BatchNorm
# with frozen scales, label smoothing, Lookahead, alternating flips and 6-view test-time
# augmentation. The full recipe (10 epochs) takes about half an hour on 2 cores; smoke mode
# trains a tiny version for three epochs on 1,200 images.

# %%
fast = TrainConfig(recipe="fast", out="runs/notebooks", progress=not SMOKE,
                   **({"epochs": 3, "model_kwargs": {"widths": "16,32,32", "tta": 2}, "batch_size": 50} if SMOKE else {}))
res = train(fast, data=data)
print(f"fast recipe: test accuracy {res.test_acc:.2%} in {res.seconds:.0f} s")
