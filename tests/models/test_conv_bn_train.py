"""conv_bn_train and FashionCNN's training path against the plain modules (the oracle)."""
import copy

import pytest
import torch
import torch.nn as nn

from convlens.models import create_model
from convlens.models.fashion import bn_of_biasless_conv, conv_bn_train


def _pair(seed: int = 0, cin: int = 1, bias: bool = True, **conv_args):
    torch.manual_seed(seed)
    conv, bn = nn.Conv2d(cin, 8, 3, bias=bias, **({"padding": 1} | conv_args)), nn.BatchNorm2d(8)
    nn.init.normal_(bn.weight, 1.0, 0.5)  # some negative scales too
    nn.init.normal_(bn.bias)
    return conv, bn


@pytest.mark.parametrize("cin,bias,conv_args", [(1, True, {}), (3, False, {}), (2, True, {"stride": 2, "padding": 0}),
                                                (2, True, {"stride": (1, 2), "padding": (2, 1), "dilation": 2})])
def test_conv_bn_train_equals_bn_of_conv(cin, bias, conv_args):
    conv, bn = _pair(cin=cin, bias=bias, **conv_args)
    ref_conv, ref_bn = copy.deepcopy(conv), copy.deepcopy(bn)
    x = torch.randn(6, cin, 10, 10) * 2 + 0.7
    out, ref = conv_bn_train(conv, bn, x), ref_bn(ref_conv(x))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    grad = torch.randn_like(ref)
    out.backward(grad)
    ref.backward(grad)
    for a, b in [(conv.weight, ref_conv.weight), (bn.weight, ref_bn.weight), (bn.bias, ref_bn.bias)]:
        torch.testing.assert_close(a.grad, b.grad, atol=1e-4, rtol=1e-4)
    if bias:  # BatchNorm cancels a bias: its gradient is zero both ways
        torch.testing.assert_close(conv.bias.grad, ref_conv.bias.grad, atol=1e-4, rtol=0)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(bn, name), getattr(ref_bn, name), atol=1e-6, rtol=1e-5)


def test_fashion_cnn_training_path_matches_the_layers():
    torch.manual_seed(1)
    fast = create_model("cnn").train()
    ref = copy.deepcopy(fast)
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    torch.manual_seed(2)
    loss = nn.functional.cross_entropy(fast(x), y)
    torch.manual_seed(2)  # the same dropout mask
    ref_loss = nn.functional.cross_entropy(ref.forward_head(ref.layer2(ref.layer1(x))), y)
    torch.testing.assert_close(loss, ref_loss, atol=1e-5, rtol=1e-5)
    loss.backward()
    ref_loss.backward()
    for (name, a), b in zip(fast.named_parameters(), ref.parameters()):
        if name == "layer2.0.bias":  # cancelled by BatchNorm: exact zeros in the fast path, rounding noise in the layers
            assert torch.count_nonzero(a.grad) == 0 and b.grad.abs().max() < 1e-6
            continue
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-4, msg=name)
    for layer in ("layer1", "layer2"):
        for stat in ("running_mean", "running_var"):
            torch.testing.assert_close(getattr(getattr(fast, layer)[1], stat), getattr(getattr(ref, layer)[1], stat),
                                       msg=f"{layer} {stat}")


def test_bias_before_batchnorm_is_left_out_only_where_batchnorm_cancels_it():
    torch.manual_seed(3)
    conv, bn = nn.Conv2d(4, 6, 3), nn.BatchNorm2d(6)
    nn.init.normal_(conv.bias, std=3.0)  # large, so a wrong running mean shows
    bn.running_mean.normal_()
    x = torch.randn(8, 4, 9, 9)
    ref_conv, ref_bn = copy.deepcopy(conv), copy.deepcopy(bn)
    out = bn_of_biasless_conv(conv, bn, x)
    torch.testing.assert_close(out, ref_bn(ref_conv(x)), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(bn.running_mean, ref_bn.running_mean)
    torch.testing.assert_close(bn.running_var, ref_bn.running_var)
    out.square().sum().backward()
    assert torch.count_nonzero(conv.bias.grad) == 0 and torch.count_nonzero(conv.weight.grad) > 0
    bn.eval()  # running statistics: the bias counts, so it is used and gets its gradient
    out = bn_of_biasless_conv(conv, bn, x)
    torch.testing.assert_close(out, ref_bn.eval()(ref_conv(x)))
    out.sum().backward()
    assert conv.bias.grad.abs().sum() > 0


def test_adam_leaves_the_cancelled_bias_where_it_was():
    torch.manual_seed(4)
    model = create_model("cnn").train()
    bias, weight = model.layer2[0].bias.detach().clone(), model.layer2[0].weight.detach().clone()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(torch.randn(8, 1, 28, 28)), torch.randint(0, 10, (8,))).backward()
        opt.step()
    assert torch.equal(model.layer2[0].bias, bias)
    assert not torch.equal(model.layer2[0].weight, weight)  # its weight did learn


def test_fashion_cnn_with_a_frozen_batchnorm_takes_the_plain_path():
    model = create_model("cnn").train()
    model.layer1[1].eval()
    x = torch.randn(4, 1, 28, 28)
    ref = model.layer2(model.layer1(x))
    torch.testing.assert_close(model.forward_features(x), ref)


def test_hooks_see_the_plain_layers():
    model = create_model("cnn").train()
    seen = []
    model.layer1[2].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    model(torch.randn(2, 1, 28, 28))
    assert seen == [torch.Size([2, 32, 28, 28])]


def test_statistics_stay_float32_under_bf16_autocast():
    conv, bn = _pair()
    ref_conv, ref_bn = copy.deepcopy(conv), copy.deepcopy(bn)
    x = torch.randn(8, 1, 12, 12)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = conv_bn_train(conv, bn, x)
    ref = ref_bn(ref_conv(x))  # float32 all through
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, atol=0.05, rtol=0.02)  # bf16 rounding of the output only
    torch.testing.assert_close(bn.running_var, ref_bn.running_var, atol=1e-6, rtol=1e-5)  # statistics exact
    grad = torch.randn_like(ref)
    out.backward(grad.bfloat16())  # the weight gradient's product reads a bf16 gradient
    ref.backward(grad)
    assert conv.weight.grad.dtype == torch.float32
    torch.testing.assert_close(conv.weight.grad, ref_conv.weight.grad, atol=0.05, rtol=0.02)


@pytest.mark.parametrize("cin,kernel,stride,padding,dilation", [(1, 3, 1, 1, 1), (3, 3, 2, 0, 1), (2, (3, 5), (1, 2), (2, 1), 2)])
def test_patch_moments_equal_those_of_unfold(cin, kernel, stride, padding, dilation):
    from convlens.models.fashion import patch_moments

    conv = nn.Conv2d(cin, 4, kernel, stride, padding, dilation)
    x = torch.rand(5, cin, 11, 13) * 3 - 1
    mu, sigma, n, rows = patch_moments(x, conv)
    # the oracle: unfold's (B, C_in k^2, L) patches, rows reordered to (kernel position, channel)
    cols = nn.functional.unfold(x, conv.kernel_size, conv.dilation, conv.padding, conv.stride)
    k2 = conv.kernel_size[0] * conv.kernel_size[1]
    cols = cols.view(5, cin, k2, -1).transpose(1, 2).reshape(5, cin * k2, -1).transpose(0, 1).flatten(1).double()
    assert n == cols.shape[1] == conv(x).shape[0] * conv(x).shape[2] * conv(x).shape[3]
    torch.testing.assert_close(mu.double(), cols.mean(1), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(sigma.double(), torch.cov(cols, correction=0), atol=1e-5, rtol=1e-5)


def test_patch_moments_refuse_what_they_cannot_see():
    from convlens.models.fashion import patch_moments

    with pytest.raises(ValueError, match="groups=1"):
        patch_moments(torch.zeros(1, 2, 5, 5), nn.Conv2d(2, 2, 3, padding="same"))


def test_patch_rows_are_the_centred_patches_over_ones():
    from convlens.models.fashion import patch_moments

    conv = nn.Conv2d(2, 4, 3, padding=1)
    x = torch.rand(3, 2, 6, 7)
    mu, _, n, rows = patch_moments(x, conv)
    cols = nn.functional.unfold(x, 3, padding=1).view(3, 2, 9, -1).transpose(1, 2).reshape(3, 18, -1)
    assert rows.shape == (19, n)
    torch.testing.assert_close(rows[:-1] + mu[:, None], cols.transpose(0, 1).flatten(1), atol=1e-6, rtol=0)
    assert torch.equal(rows[-1], torch.ones(n))


def test_conv_bn_train_refuses_an_input_that_needs_a_gradient():
    conv, bn = _pair()
    with pytest.raises(ValueError, match="must not need a gradient"):
        conv_bn_train(conv, bn, torch.randn(2, 1, 6, 6, requires_grad=True))


@pytest.mark.parametrize("with_bias", [True, False])
def test_conv_from_patches_equals_conv2d_with_or_without_bias(with_bias):
    from convlens.models.fashion import ConvFromPatches, patch_moments

    torch.manual_seed(1)
    conv = nn.Conv2d(2, 5, 3, stride=(1, 2), padding=1, bias=with_bias)
    x = torch.randn(3, 2, 7, 8)
    moments = patch_moments(x, conv)
    weight = conv.weight.detach().clone().requires_grad_()
    bias = conv.bias.detach().clone().requires_grad_() if with_bias else None
    out = ConvFromPatches.apply(x, weight, bias, moments.rows, moments.mu, conv)
    ref_w = weight.detach().clone().requires_grad_()
    ref_b = bias.detach().clone().requires_grad_() if with_bias else None
    ref = nn.functional.conv2d(x, ref_w, ref_b, conv.stride, conv.padding)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    assert out.is_contiguous(memory_format=torch.channels_last)
    grad = torch.randn_like(ref)
    out.backward(grad)
    ref.backward(grad)
    torch.testing.assert_close(weight.grad, ref_w.grad, atol=1e-4, rtol=1e-4)
    if with_bias:
        torch.testing.assert_close(bias.grad, ref_b.grad, atol=1e-4, rtol=1e-4)
