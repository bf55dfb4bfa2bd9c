"""The chapter's Fashion-MNIST models (``dnn``, ``cnn``, ``cnn_chapter``) and a stronger one of ours (``fashion_vgg``).

``cnn`` adds the ReLUs the printed FashionCNN lacks between fc1, fc2 and fc3 (without them the three
collapse into one linear map) and uses ``nn.Dropout``, not ``nn.Dropout2d`` on 2-D tensors;
``cnn_chapter`` keeps the printed head. Parameter counts and the chapter's other errors: docs/first-cnn.md.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .registry import register_untrained

# Fashion-MNIST training-set statistics (pixel values in [0, 1]).
FASHION_MNIST_CFG = {"mean": (0.2860,), "std": (0.3530,), "input_size": (1, 28, 28), "num_classes": 10,
                     "interpolation": "bilinear", "crop_pct": 1.0, "dataset": "fashion-mnist"}


class ClassifierMixin:
    """``forward = forward_head(forward_features(x))``; subclasses name their last layer ``fc``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.fc.in_features, num_classes)
        self.pretrained_cfg = {**self.pretrained_cfg, "num_classes": num_classes}


class FashionDNN(ClassifierMixin, nn.Module):
    """The chapter's fully connected network.

    Shapes: (B, 1, 28, 28) -> flatten (B, 784) -> (B, 256) -> (B, 128) -> (B, num_classes).
    """

    def __init__(self, num_classes: int = 10, in_chans: int = 1, img_size: int = 28, drop_rate: float = 0.25):
        super().__init__()
        self.num_classes = num_classes
        self.fc1 = nn.Linear(in_chans * img_size * img_size, 256)
        self.drop = nn.Dropout(drop_rate)
        self.fc2 = nn.Linear(256, 128)
        self.fc = nn.Linear(128, num_classes)  # the chapter's fc3
        self.pretrained_cfg = {**FASHION_MNIST_CFG, "input_size": (in_chans, img_size, img_size), "num_classes": num_classes}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(F.relu(self.fc1(x.flatten(1))))
        return F.relu(self.fc2(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x if pre_logits else self.fc(x)


class FashionCNN(ClassifierMixin, nn.Module):
    """The chapter's convolutional network.

    Shapes: (B, 1, 28, 28) -conv3x3 p1, BN, ReLU-> (B, 32, 28, 28) -maxpool 2-> (B, 32, 14, 14)
    -conv3x3, BN, ReLU-> (B, 64, 12, 12) -maxpool 2-> (B, 64, 6, 6) = forward_features;
    flatten (B, 2304) -fc1-> 600 -dropout-> -fc2-> 120 -fc-> num_classes.
    """

    def __init__(self, num_classes: int = 10, in_chans: int = 1, img_size: int = 28, drop_rate: float = 0.25,
                 fc_relu: bool = True):
        super().__init__()
        self.num_classes = num_classes
        self.fc_relu = fc_relu
        self.layer1 = nn.Sequential(nn.Conv2d(in_chans, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2, 2))
        self.layer2 = nn.Sequential(nn.Conv2d(32, 64, 3), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2))
        side = ((img_size // 2) - 2) // 2
        self.fc1 = nn.Linear(64 * side * side, 600)
        self.drop = nn.Dropout(drop_rate)
        self.fc2 = nn.Linear(600, 120)
        self.fc = nn.Linear(120, num_classes)  # the chapter's fc3
        self.pretrained_cfg = {**FASHION_MNIST_CFG, "input_size": (in_chans, img_size, img_size), "num_classes": num_classes}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        fast = self.training and self.layer1[1].training and torch.is_grad_enabled() and not x.requires_grad
        if not fast or _hooked(self.layer1, self.layer2):  # (a BatchNorm put in eval mode alone keeps its meaning)
            return self.layer2(self.layer1(x))
        # The same function and gradients, computed in fewer passes over layer 1's (B, 32, 28, 28) map, which
        # made 42% of a CPU training step (docs/speed.md): BatchNorm's batch statistics come from the input's
        # patches, so conv + BN is one convolution; ReLU commutes with max-pooling, so it runs on a quarter.
        # conv2's bias, which BatchNorm cancels, is left out.
        conv1, bn1, _, pool1 = self.layer1
        x = F.relu(pool1(conv_bn_train(conv1, bn1, x)))
        conv2, bn2, _, pool2 = self.layer2
        return F.relu(pool2(bn_of_biasless_conv(conv2, bn2, x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        act = F.relu if self.fc_relu else (lambda t: t)
        x = self.drop(act(self.fc1(x.flatten(1))))
        x = act(self.fc2(x))
        return x if pre_logits else self.fc(x)


def _hooked(*modules: nn.Module) -> bool:
    """Whether any forward hook would see these modules' outputs (feature maps, shapes' tables)."""
    from torch.nn.modules import module as module_globals

    if module_globals._global_forward_hooks or module_globals._global_forward_pre_hooks:
        return True
    return any(m._forward_hooks or m._forward_pre_hooks for top in modules for m in top.modules())


def bn_of_biasless_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """``bn(conv(x))`` in training mode, with the convolution run without its bias.

    In training mode BatchNorm subtracts the batch mean of each channel, which contains the bias b_c, so the
    output does not depend on b and b's gradient is zero::

        bn(y + b)_c = gamma_c (y_c + b_c - (E[y_c] + b_c)) / sqrt(Var[y_c] + eps) + beta_c = bn(y)_c

    The chapter's FashionCNN keeps a bias before each BatchNorm; its gradient is rounding noise (|g| < 7e-7),
    which Adam, dividing by that noise's own scale, turns into steps of about a tenth of the learning rate
    (mean 1.2e-4 at lr 1e-3 over 200 steps of real batches) that change nothing the network computes.
    Skipping it saves oneDNN's bias reduction over the (B, C_out, H', W') gradient (0.2-0.3 ms of a 25 ms
    step on a Xeon capped to AVX2, ~1 of ~50 ms on an AVX2-only Zen 3; docs/speed.md); the bias gets a
    gradient of exact zeros and keeps its value. The running mean is kept as ``bn(conv(x))`` keeps it,
    (1 - m) r + m (E[y] + b), by shifting it by b around BatchNorm's own update.

    Shapes: x (B, C_in, H, W) -> (B, C_out, H', W').
    """
    if conv.bias is None or not (bn.training or bn.running_mean is None):  # running statistics would see b
        return bn(conv(x))
    # b's gradient is an exact zero rather than none: DDP expects a gradient for every parameter, and Adam's
    # moments of zeros stay zero, so b keeps its value (an 18k-element add, against a reduction over the map)
    y = conv._conv_forward(x, conv.weight + conv.bias.sum() * 0, None)
    if bn.running_mean is None:
        return bn(y)
    kept = bn.running_mean
    with torch.no_grad():  # a new tensor, not an in-place shift: batch_norm's backward checks the one it was given
        bn.running_mean = kept - conv.bias
    try:
        return bn(y)
    finally:
        with torch.no_grad():
            kept.copy_(bn.running_mean + conv.bias)
        bn.running_mean = kept


def conv_bn_train(conv: nn.Conv2d, bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """``bn(conv(x))`` in training mode as one convolution, for an input that needs no gradient.

    BatchNorm normalises each output channel c of y = conv(x) by its batch mean and variance
    over (B, H, W). y_c at one pixel is w_c . p + b_c, with p the (C_in k^2)-vector of the input
    patch under the kernel, so with mu and Sigma the mean and covariance of all B*H*W patches::

        E[y_c] = w_c . mu + b_c        Var[y_c] = w_c^T Sigma w_c

    and ``bn(conv(x)) = conv(x; s_c w_c) + beta_c + s_c (b_c - E[y_c])``, s_c = gamma_c / sqrt(Var[y_c] + eps).
    mu and Sigma cost one pass over the small input (C_in k^2 = 9 for Fashion-MNIST) instead of two
    over the (B, C_out, H, W) output, and autograd differentiates through E[y] and Var[y] exactly as it
    does through BatchNorm's own statistics. Running statistics are updated as ``bn`` would (unbiased
    variance). Equal to ``bn(conv(x))`` to float rounding (tests/models/test_conv_bn_train.py).

    Shapes: x (B, C_in, H, W) -> (B, C_out, H', W').
    """
    with torch.autocast(x.device.type, enabled=False):  # statistics in float32, as BatchNorm keeps them
        mu, sigma, n, rows = patch_moments(x.float(), conv)
        # rows of mu and Sigma run over (kernel position, input channel): the weight's columns in that order
        w = conv.weight.flatten(2).transpose(1, 2).flatten(1)  # (C_out, k^2 C_in)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(w[:, 0])
        mean = w @ mu + bias
        var = ((w @ sigma) * w).sum(1)
        if bn.track_running_stats:
            with torch.no_grad():
                momentum = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked + 1)
                bn.running_mean.lerp_(mean.detach(), momentum)
                bn.running_var.lerp_(var.detach() * n / max(n - 1, 1), momentum)
                bn.num_batches_tracked += 1
    scale = (bn.weight if bn.affine else 1) / torch.sqrt(var + bn.eps)
    shift = (bn.bias if bn.affine else 0) + scale * (bias - mean)
    return ConvFromPatches.apply(x, conv.weight * scale.view(-1, 1, 1, 1), shift, rows, mu, conv)


class ConvFromPatches(torch.autograd.Function):
    """``F.conv2d(x, weight, bias)`` for an x that needs no gradient, whose weight gradient reuses the patches.

    The weight gradient is the sum over the N = B H' W' output pixels of g_pixel p_pixel^T. With the centred
    patches P_c (D, N) and their mean mu already at hand (:func:`patch_moments`), stacked over a row of ones,
    both gradients come from one product that reads the (N, C_out) output gradient G once::

        [P_c; 1] G = [P_c G; g_bias],   g_bias = sum_pixels G,   dW = (P_c G)^T + g_bias mu^T

    For Fashion-MNIST's one input channel oneDNN's weight and bias gradients of conv1 took 4.3 ms in isolation
    against 0.9 ms for the product (Xeon, AVX2 cap; docs/speed.md). G is a view of a channels-last gradient
    (a copy otherwise). The forward is the same product the other way round, y = [P_c; 1]^T [W^T; b + W mu],
    whose (N, C_out) result is the channels-last output: 0.41 against oneDNN's 0.50 ms in isolation, about
    2% of a training step (median of paired rounds, ``benchmarks/cnn_step.py``).

    Shapes: x (B, C_in, H, W), weight (C_out, C_in, k, k), bias (C_out,), rows (D + 1, N), mu (D,)
    -> (B, C_out, H', W') in channels-last memory, N = B H' W'.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, rows, mu, conv):  # type: ignore[override]
        if ctx.needs_input_grad[0]:  # the backward computes no input gradient
            raise ValueError("ConvFromPatches: the input must not need a gradient (use F.conv2d)")
        ctx.save_for_backward(rows, mu)
        ctx.weight_shape = weight.shape
        c_out = weight.shape[0]
        w_flat = weight.permute(0, 2, 3, 1).reshape(c_out, -1)  # (C_out, D), D in the rows' order
        shift = w_flat @ mu + (bias if bias is not None else 0)
        w_rows = torch.cat([w_flat.T, shift[None]])  # (D + 1, C_out): the centred patches' weights
        batch, out_h, out_w = x.shape[0], *_out_size(x, conv)
        return (rows.T @ w_rows).view(batch, out_h, out_w, c_out).permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        rows, mu = ctx.saved_tensors
        c_out, c_in, kh, kw = ctx.weight_shape
        g = grad.permute(0, 2, 3, 1).reshape(-1, c_out).to(rows.dtype)  # (N, C_out), pixels in (b, h, w) order
        product = rows @ g  # (D + 1, C_out)
        grad_bias = product[-1]
        grad_w = product[:-1].T + grad_bias[:, None] * mu  # (C_out, D), D in (kernel row, kernel column, channel) order
        grad_bias = grad_bias if ctx.needs_input_grad[2] else None
        return None, grad_w.view(c_out, kh, kw, c_in).permute(0, 3, 1, 2), grad_bias, None, None, None


def _out_size(x: torch.Tensor, conv: nn.Conv2d) -> tuple[int, int]:
    (kh, kw), (sh, sw), (dh, dw), (ph, pw) = conv.kernel_size, conv.stride, conv.dilation, conv.padding
    return (x.shape[2] + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (x.shape[3] + 2 * pw - dw * (kw - 1) - 1) // sw + 1


class PatchMoments(NamedTuple):
    mu: torch.Tensor  # (D,)
    sigma: torch.Tensor  # (D, D)
    n: int  # B H' W'
    rows: torch.Tensor  # (D + 1, B H' W'): the patches less mu, then a row of ones


@torch.no_grad()
def patch_moments(x: torch.Tensor, conv: nn.Conv2d) -> PatchMoments:
    """Mean mu (D,) and covariance Sigma (D, D) of the D = k^2 C_in patches ``conv`` sees in x, their count n
    and the centred patches themselves, over a row of ones (for :class:`ConvFromPatches`).

    ``F.unfold`` would build the same (B, D, L) patch matrix, then a transposed copy of it; copying the
    k^2 shifted views of the padded input into one (D + 1, B, L) buffer writes it once, in the order the
    statistics and the weight gradient read it: a CPU training step of the chapter CNN became 5-6% faster
    on an AVX2-only Zen 3 and 2% on a Xeon capped to AVX2 (docs/speed.md). Sigma is summed over per-image
    products, (D, L) @ (L, D), rather than one (D, B L) @ (B L, D).
    No gradient: mu and Sigma depend on the input only, and the input needs none here.

    Shapes: x (B, C_in, H, W) -> mu (D,), Sigma (D, D), rows (D + 1, B H' W'); D ordered (kernel row,
    kernel column, channel), columns (image, row, column) as in the convolution's output.
    """
    if conv.groups != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise ValueError("patch_moments: needs groups=1, zero padding given as numbers")
    (kh, kw), (sh, sw), (dh, dw), (ph, pw) = conv.kernel_size, conv.stride, conv.dilation, conv.padding
    padded = F.pad(x, (pw, pw, ph, ph))
    out_h, out_w = _out_size(x, conv)
    shifted = [padded[:, :, i * dh: i * dh + sh * (out_h - 1) + 1: sh, j * dw: j * dw + sw * (out_w - 1) + 1: sw]
               for i in range(kh) for j in range(kw)]
    batch, d = x.shape[0], kh * kw * x.shape[1]
    rows = x.new_empty(d + 1, batch, out_h * out_w)  # the patches, then a row of ones: the bias's "input"
    by_position = rows[:d].view(kh * kw, x.shape[1], batch, out_h, out_w).transpose(1, 2)  # (k^2, B, C_in, H', W')
    for position, view in enumerate(shifted):
        by_position[position].copy_(view)
    rows[d] = 1
    patches = rows[:d]  # (D, B, L)
    n = batch * out_h * out_w
    mu = patches.mean((1, 2))
    patches -= mu[:, None, None]
    per_image = patches.transpose(0, 1)  # (B, D, L)
    sigma = torch.bmm(per_image, per_image.transpose(1, 2)).sum(0) / n
    return PatchMoments(mu, sigma, n, rows.view(d + 1, n))


def _conv_bn(cin: int, cout: int, pool: bool = False) -> nn.Sequential:
    """conv 3x3 -> [max-pool 2] -> BatchNorm -> ReLU. Pooling straight after the convolution
    gives BatchNorm and ReLU a quarter of the pixels: training ran 1.1x and float32
    evaluation 1.5-2x faster on the project's CPU than conv-BN-ReLU-pool."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, bias=False)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers, nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FashionVGG(ClassifierMixin, nn.Module):
    """A small VGG-style network with BatchNorm, built for accuracy per CPU second.

    Shapes: (B, C, 28, 28) -[conv-pool-BN-ReLU 32]-> (B, 32, 14, 14) -[conv-BN-ReLU 64]->
    -[conv-pool-BN-ReLU 64]-> (B, 64, 7, 7) -[conv-BN-ReLU 128]-> (B, 128, 7, 7)
    = forward_features; global average + max pooling (B, 256) -dropout-> fc -> num_classes.
    (Channel counts for ``width=32``; they scale with ``width``.) ``flip_tta=True``: in eval
    mode, the logits are averaged over the image and its horizontal mirror.
    """

    def __init__(self, num_classes: int = 10, in_chans: int = 1, img_size: int = 28, drop_rate: float = 0.3,
                 width: int = 32, flip_tta: bool = False):
        super().__init__()
        w = width
        self.num_classes = num_classes
        self.flip_tta = flip_tta
        self.features = nn.Sequential(
            _conv_bn(in_chans, w, pool=True),
            _conv_bn(w, 2 * w), _conv_bn(2 * w, 2 * w, pool=True),
            _conv_bn(2 * w, 4 * w),
        )
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(8 * w, num_classes)
        self.pretrained_cfg = {**FASHION_MNIST_CFG, "input_size": (in_chans, img_size, img_size), "num_classes": num_classes}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.flip_tta and not self.training:
            # a mirrored garment is the same garment (and training saw both)
            return (super().forward(x) + super().forward(x.flip(3))) / 2
        return super().forward(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.cat([x.mean((2, 3)), x.amax((2, 3))], dim=1)
        return x if pre_logits else self.fc(self.drop(x))


for _name, _build, _doc in (
    ("dnn", FashionDNN, "The chapter's FashionDNN (235,146 parameters)."),
    ("cnn", FashionCNN, "The chapter's FashionCNN with ReLU between its fc layers (1,475,338 parameters)."),
    ("cnn_chapter", partial(FashionCNN, fc_relu=False), "FashionCNN exactly as printed in the chapter: no ReLU between fc1, fc2, fc3."),
    ("fashion_vgg", FashionVGG, "A small VGG-style CNN with BatchNorm: convlens' best Fashion-MNIST recipe."),
):
    register_untrained(_name, _build, _doc, f"train it with `convlens train --model {_name}`")
