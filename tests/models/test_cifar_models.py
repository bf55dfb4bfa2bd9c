"""He et al.'s CIFAR networks: exact parameter counts, the option-A shortcut, timm's interface."""
from __future__ import annotations

import pytest
import torch

from convlens.models import create_model
from convlens.models.cifar import PadShortcut, patch_whitening

PAPER = {"resnet20": 0.27e6, "resnet32": 0.46e6, "resnet44": 0.66e6, "resnet56": 0.85e6, "resnet110": 1.7e6}


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_exact_parameter_counts():
    assert n_params(create_model("resnet20")) == 269_722
    assert n_params(create_model("resnet56")) == 853_018


@pytest.mark.parametrize("name", sorted(PAPER))
def test_counts_near_paper_and_plain_twin_equal(name):
    m = create_model(name)
    assert abs(n_params(m) - PAPER[name]) / PAPER[name] < 0.02
    depth = int(name[6:])
    if depth <= 56:  # option A adds no parameters: the plain twin has exactly as many
        assert n_params(create_model(f"plain{depth}")) == n_params(m)
    convs = [x for x in m.modules() if isinstance(x, torch.nn.Conv2d)]
    assert len(convs) + 1 == depth  # 6n+2 weighted layers: 6n+1 convolutions and fc


def test_timm_interface_and_shapes():
    m = create_model("resnet20").eval()
    x = torch.randn(4, 3, 32, 32)
    f = m.forward_features(x)
    assert f.shape == (4, 64, 8, 8)
    assert m.forward_head(f, pre_logits=True).shape == (4, 64)
    torch.testing.assert_close(m.forward_head(f), m(x))
    m.reset_classifier(3)
    assert m(x).shape == (4, 3) and m.pretrained_cfg["num_classes"] == 3
    assert m.pretrained_cfg["input_size"] == (3, 32, 32) and m.pretrained_cfg["mean"][0] == pytest.approx(0.4914)
    assert m.convlens_name == "resnet20"


def test_option_a_shortcut_is_subsample_plus_zero_channels():
    x = torch.randn(2, 16, 32, 32)
    y = PadShortcut(16, 32, 2)(x)
    assert y.shape == (2, 32, 16, 16)
    torch.testing.assert_close(y[:, 8:24], x[:, :, ::2, ::2])
    assert y[:, :8].abs().sum() == 0 and y[:, 24:].abs().sum() == 0


def test_plain_block_differs_from_residual_only_by_the_addition():
    torch.manual_seed(0)
    res, plain = create_model("resnet20").eval(), create_model("plain20").eval()
    plain.load_state_dict(res.state_dict())  # same keys: shortcuts have no parameters
    x = torch.randn(2, 16, 32, 32)
    blk_r, blk_p = res.layer1[0], plain.layer1[0]
    f = blk_p.bn2(blk_p.conv2(torch.relu(blk_p.bn1(blk_p.conv1(x)))))
    torch.testing.assert_close(blk_p(x), torch.relu(f))
    torch.testing.assert_close(blk_r(x), torch.relu(f + x))


def test_vgg_patch_whitening_whitens_real_patches(cifar_small):
    m = create_model("cifar_vgg", widths="16,32,32")
    x = (cifar_small["train"].images.float() / 255 - 0.47) / 0.25
    patch_whitening(m.stem, x)
    out = torch.nn.functional.conv2d(x, m.stem.weight[:12])
    cov = torch.cov(out.permute(1, 0, 2, 3).reshape(12, -1))
    # unit variance, decorrelated (eps=5e-4 shrinks the smallest eigen-directions a little)
    torch.testing.assert_close(cov, torch.diag(cov.diag()), atol=1e-3, rtol=0)
    assert cov.diag()[6:].min() > 0.9 and cov.diag().max() < 1.01
    m.eval().tta = 2
    assert m(x[:3]).shape == (3, 10)


def test_zero_init_residual_starts_each_block_as_its_shortcut():
    torch.manual_seed(0)
    res, plain = create_model("resnet56", zero_init_residual=True), create_model("plain56", zero_init_residual=True)
    x = torch.relu(torch.randn(2, 16, 32, 32))  # a block's input follows a ReLU
    for blk in res.layer1:
        assert torch.count_nonzero(blk.bn2.weight) == 0
        torch.testing.assert_close(blk(x), x)  # relu(0 + x) = x: the block is the identity
    # a plain block has no shortcut to start as: it keeps He's init (zeroing it would cut the signal)
    assert all(torch.count_nonzero(blk.bn2.weight) == blk.bn2.weight.numel() for blk in plain.layer1)
    default = create_model("resnet20")
    assert torch.count_nonzero(default.layer1[0].bn2.weight) == 16
