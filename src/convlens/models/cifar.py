"""CIFAR-10 networks: He et al.'s 6n+2 ResNets and plain nets, and a VGG-style net for speed.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition" (2016), section 4.2:

* a 3x3 convolution to 16 channels, then three stages of ``n`` blocks at 16, 32 and 64
  channels on 32x32, 16x16 and 8x8 maps (the first block of stages 2 and 3 halves the map
  with stride 2), global average pooling and a 10-way linear layer: ``6n + 2`` weighted layers;
* a block is ``F(x) = BN(conv3x3(ReLU(BN(conv3x3(x)))))`` and outputs ``ReLU(F(x) + x)``: the
  layers learn the residual ``F(x) = H(x) - x`` instead of the mapping ``H(x)`` itself;
* where the shape changes, the shortcut is "option A": ``x`` subsampled by 2 and zero-padded
  from C to 2C channels; it has no parameters, so a ResNet and its plain twin (the same blocks
  without ``+ x``) have exactly the same parameters and multiply-adds.

=================  ===========  ===================
name               parameters   paper's figure
=================  ===========  ===================
``resnet20``       269,722      0.27M, 8.75% error
``resnet32``       464,154      0.46M, 7.51%
``resnet44``       658,586      0.66M, 7.17%
``resnet56``       853,018      0.85M, 6.97%
``resnet110``      1,727,962    1.7M,  6.43%
``plain20..56``    same as resnet<depth>
``cifar_vgg``      see class    airbench-style VGG net for the fast recipe
=================  ===========  ===================
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ..data.cifar10 import DATA_CFG
from .fashion import ClassifierMixin
from .registry import register_untrained

CIFAR10_CFG = {k: DATA_CFG[k] for k in ("input_size", "mean", "std", "num_classes", "interpolation", "crop_pct")}
CIFAR10_CFG["dataset"] = "cifar10"


class ClassifierHead(ClassifierMixin):
    """timm's interface over a model whose last layer is ``fc`` after global average pooling."""

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean((2, 3))
        return x if pre_logits else self.fc(x)


class PadShortcut(nn.Module):
    """Option A: ``(B, C, H, W) -> (B, C_out, H/s, W/s)``, subsample by ``stride``, zero-pad the new channels."""

    def __init__(self, in_chans: int, out_chans: int, stride: int):
        super().__init__()
        self.stride, self.pad = stride, out_chans - in_chans

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2)) if self.pad else x

    def extra_repr(self) -> str:
        return f"stride={self.stride}, zero channels={self.pad}"


class BasicBlock(nn.Module):
    """``ReLU(F(x) + shortcut(x))`` with ``F`` = conv3x3-BN-ReLU-conv3x3-BN; ``shortcut=False``: ``ReLU(F(x))``."""

    def __init__(self, in_chans: int, out_chans: int, stride: int = 1, shortcut: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, out_chans, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_chans)
        self.conv2 = nn.Conv2d(out_chans, out_chans, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chans)
        same = stride == 1 and in_chans == out_chans
        self.shortcut = (nn.Identity() if same else PadShortcut(in_chans, out_chans, stride)) if shortcut else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return F.relu(out)


class CifarResNet(ClassifierHead, nn.Module):
    """The 6n+2 network: ``(B, 3, 32, 32) -> stem (B, 16, 32, 32) -> stage1 (B, 16, 32, 32) ->
    stage2 (B, 32, 16, 16) -> stage3 (B, 64, 8, 8)`` = ``forward_features``; then mean over
    the 8x8 map and ``fc``: ``(B, num_classes)``."""

    def __init__(self, depth: int = 20, num_classes: int = 10, shortcut: bool = True, widths: tuple[int, ...] = (16, 32, 64),
                 in_chans: int = 3, img_size: int = 32, zero_init_residual: bool = False):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"depth {depth}: a CIFAR ResNet has 6n+2 layers (20, 32, 44, 56, 110, ...)")
        n = (depth - 2) // 6
        self.depth, self.num_classes = depth, num_classes
        self.conv1 = nn.Conv2d(in_chans, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        stages, c = [], widths[0]
        for i, w in enumerate(widths):
            blocks = [BasicBlock(c if j == 0 else w, w, 2 if (j == 0 and i > 0) else 1, shortcut) for j in range(n)]
            stages.append(nn.Sequential(*blocks))
            c = w
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(c, num_classes)
        self.pretrained_cfg = {**CIFAR10_CFG, "num_classes": num_classes, "input_size": (in_chans, img_size, img_size)}
        for m in self.modules():  # He et al. initialise convolutions with their own He init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:  # Goyal et al. 2017 (torchvision's flag): each block starts as its shortcut;
            for m in self.modules():  # a plain block has none to start as, so plain nets keep He's init
                if isinstance(m, BasicBlock) and m.shortcut is not None:
                    nn.init.zeros_(m.bn2.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        return self.layer3(self.layer2(self.layer1(x)))


def _conv_bn(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.GELU()]


class CifarVGG(ClassifierHead, nn.Module):
    """A VGG-style net in the shape of airbench's (Jordan 2024): a 2x2 stem convolution, then
    three blocks ``conv3x3 - maxpool 2 - BN - GELU - conv3x3 - BN - GELU`` at ``widths``, a
    final max-pool and a linear layer scaled by ``1/9`` (airbench's logit scale).

    Shapes: ``(B, 3, 32, 32) -stem 2x2-> (B, 24, 31, 31) -block1-> (B, w1, 15, 15)
    -block2-> (B, w2, 7, 7) -block3-> (B, w3, 3, 3)`` = ``forward_features``; max over the map,
    ``fc``. The stem's 24 = 2·3·2·2 filters are meant to be set by :func:`patch_whitening`
    (eigenvectors of the 2x2 patches' covariance, ±) and frozen.

    ``tta``: in eval mode, average the logits of the image and its mirror (``1``) and of
    1-pixel translations of both (``2``), as airbench's multi-view test-time augmentation.
    """

    def __init__(self, num_classes: int = 10, widths: tuple[int, int, int] = (64, 256, 256), tta: int = 0,
                 scale: float = 1 / 9, in_chans: int = 3, img_size: int = 32):
        super().__init__()
        self.num_classes, self.tta, self.scale = num_classes, tta, scale
        c = 2 * in_chans * 2 * 2  # every 2x2 patch direction, with its negative (patch_whitening)
        self.stem = nn.Conv2d(in_chans, c, 2, padding=0, bias=True)
        blocks = []
        for w in widths:
            conv1, bn1, act1 = _conv_bn(c, w)
            blocks.append(nn.Sequential(conv1, nn.MaxPool2d(2), bn1, act1, *_conv_bn(w, w)))
            c = w
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, num_classes, bias=False)
        self.pretrained_cfg = {**CIFAR10_CFG, "num_classes": num_classes, "input_size": (in_chans, img_size, img_size)}
        for m in self.blocks.modules():
            if isinstance(m, nn.BatchNorm2d):
                # short runs: running statistics must follow the weights quickly (airbench: 0.6 in Keras terms)
                m.momentum, m.eps = 0.4, 1e-12
            elif isinstance(m, nn.Conv2d):
                # identity ("dirac") init of the first C_in filters: each block starts as an implicit residual
                nn.init.dirac_(m.weight.data[: m.in_channels])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(F.gelu(self.stem(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.amax((2, 3))
        return x if pre_logits else self.fc(x) * self.scale

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or not self.tta:
            return self._logits(x)
        out = self._logits(x) + self._logits(x.flip(3))
        if self.tta >= 2:  # shift by one pixel up-left and down-right, mirrored too: 6 views in all
            pad = F.pad(x, (1, 1, 1, 1), mode="reflect")
            for v in (pad[:, :, :-2, :-2], pad[:, :, 2:, 2:]):
                out = out + 0.5 * (self._logits(v) + self._logits(v.flip(3)))
            return out / 4
        return out / 2


@torch.no_grad()
def patch_whitening(conv: nn.Conv2d, images: torch.Tensor, eps: float = 5e-4) -> None:
    """Set ``conv`` (24 filters of 3x2x2) to whiten the 2x2 patches of ``images`` (B, 3, 32, 32),
    already normalised: filters are the eigenvectors ``v_i`` of the patch covariance scaled by
    ``1/sqrt(lambda_i + eps)``, each with its negative (so a ReLU/GELU keeps both signs).
    Outputs then have unit variance and are decorrelated: the first layer needs no training."""
    c, h, w = conv.in_channels, *conv.kernel_size
    patches = images.float().unfold(2, h, 1).unfold(3, w, 1).transpose(1, 3).reshape(-1, c * h * w)
    evals, evecs = torch.linalg.eigh(torch.cov(patches.T))
    filt = (evecs.T / (evals + eps).sqrt()[:, None]).reshape(-1, c, h, w)
    conv.weight.copy_(torch.cat([filt, -filt]))
    if conv.bias is not None:
        conv.bias.zero_()


#: He et al.'s CIFAR nets: (name, depth, identity shortcuts, description); the he recipe's models
CIFAR_RESNETS = (
    ("resnet20", 20, True, "He et al.'s CIFAR ResNet-20 (n=3, option-A shortcuts, 269,722 parameters)."),
    ("resnet32", 32, True, "He et al.'s CIFAR ResNet-32 (n=5, 464,154 parameters)."),
    ("resnet44", 44, True, "He et al.'s CIFAR ResNet-44 (n=7, 658,586 parameters)."),
    ("resnet56", 56, True, "He et al.'s CIFAR ResNet-56 (n=9, 853,018 parameters)."),
    ("resnet110", 110, True, "He et al.'s CIFAR ResNet-110 (n=18, 1,727,962 parameters)."),
    ("plain20", 20, False, "ResNet-20 without shortcuts: He et al.'s plain 20-layer net."),
    ("plain32", 32, False, "ResNet-32 without shortcuts."),
    ("plain44", 44, False, "ResNet-44 without shortcuts."),
    ("plain56", 56, False, "ResNet-56 without shortcuts: deeper, and worse even on its training set (the degradation problem)."),
)
for _name, _depth, _shortcut, _doc in CIFAR_RESNETS:
    register_untrained(_name, partial(CifarResNet, _depth, shortcut=_shortcut), _doc,
                       f"train it: convlens train --data cifar10 --model {_name}")


def _cifar_vgg(num_classes: int, **kwargs) -> CifarVGG:
    if "widths" in kwargs and isinstance(kwargs["widths"], str):  # --model-kwargs widths=64,256,256
        kwargs["widths"] = tuple(int(w) for w in kwargs["widths"].split(","))
    return CifarVGG(num_classes=num_classes, **kwargs)


register_untrained("cifar_vgg", _cifar_vgg, "A VGG-style CIFAR net (airbench's shape): whitened 2x2 stem, 3 conv blocks; "
                   "the fast recipe's model.", "train it: convlens train --data cifar10 --recipe fast")
