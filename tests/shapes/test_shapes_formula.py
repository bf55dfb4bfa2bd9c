"""W2 = (W1 - F + 2P)/S + 1: the chapter's numbers, refusals with their arithmetic, and
equality with what torch really produces over a grid of configurations."""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from convlens.errors import ConvlensError
from convlens.shapes.formula import conv_layer, layer_output_shape, output_size, parse_dims, pool_layer


def test_issue_example_conv_32x32x3_k5_s1_p2():
    r = conv_layer((32, 32, 3), filters=3, kernel=5, stride=1, padding=2)
    assert r["output"] == (32, 32, 3)
    assert r["steps"][0]["arithmetic"] == "W2 = (32 - 5 + 2*2)/1 + 1 = 31/1 + 1 = 32"
    assert r["weights"] == 5 * 5 * 3 * 3 == 225 and r["biases"] == 3 and r["params"] == 228
    assert r["torch_output"] == (32, 32, 3) and r["torch_params"] == 228
    assert r["macs"] == 32 * 32 * 3 * 75 and r["flops"] == 2 * r["macs"]


def test_alexnet_conv1_and_pool_arithmetic():
    assert output_size(227, 11, 4, 0)["arithmetic"] == "W2 = (227 - 11 + 2*0)/4 + 1 = 216/4 + 1 = 55"
    r = pool_layer((55, 55, 96), kernel=3, stride=2)
    assert r["output"] == (27, 27, 96) == r["torch_output"] and r["params"] == 0


@pytest.mark.parametrize("size,k,s,p,shown", [
    (224, 11, 4, 0, "W2 = (224 - 11 + 2*0)/4 + 1 = 213/4 + 1 = 54.25"),
    (32, 5, 2, 0, "W2 = (32 - 5 + 2*0)/2 + 1 = 27/2 + 1 = 14.5"),
    (10, 3, 3, 1, "W2 = (10 - 3 + 2*1)/3 + 1 = 9/3 + 1 = 4"),  # exact: not refused
])
def test_non_integer_sizes_are_refused_with_the_arithmetic(size, k, s, p, shown):
    num = size - k + 2 * p
    if num % s == 0:
        assert output_size(size, k, s, p)["arithmetic"] == shown
        return
    with pytest.raises(ConvlensError) as exc:
        output_size(size, k, s, p)
    msg = str(exc.value)
    assert msg.startswith(shown + " is not a whole number")
    assert "\n" not in msg
    assert f"floor to {num // s + 1}" in msg


def test_refusal_suggests_a_configuration_that_works():
    with pytest.raises(ConvlensError, match=r"e\.g\. an input of 227 gives 55\)"):
        output_size(224, 11, 4, 0)  # odd numerator, even stride: no padding can fix it
    with pytest.raises(ConvlensError, match=r"e\.g\. --padding 1 gives 4\)"):
        output_size(10, 3, 3, 0)  # 7/3: padding 1 makes it 9/3
    assert output_size(10, 3, 3, 1)["output"] == 4 and output_size(227, 11, 4, 0)["output"] == 55


def test_bad_arguments_are_refused():
    with pytest.raises(ConvlensError, match="larger than the padded input"):
        output_size(3, 5, 1, 0)
    with pytest.raises(ConvlensError, match="--stride 0"):
        output_size(32, 3, 0, 0)
    with pytest.raises(ConvlensError, match="--input"):
        parse_dims("32xax3")
    assert parse_dims("32x32x3") == (32, 32, 3) and parse_dims("3*224*224") == (3, 224, 224)


def test_floor_is_what_pytorch_does():
    r = output_size(224, 11, 4, 0, floor=True)
    assert r["output"] == 54 and not r["exact"] and r["dropped"] == 1
    y = F.conv2d(torch.zeros(1, 1, 224, 224), torch.zeros(1, 1, 11, 11), stride=4)
    assert y.shape[-1] == 54


def test_formula_equals_torch_on_a_grid():
    """Wherever the formula accepts a configuration, torch gives that size; wherever it
    refuses, torch floors to exactly the size the message names."""
    accepted = refused = 0
    for n, k, s, p, d in itertools.product(range(4, 19), (1, 2, 3, 5), (1, 2, 3), (0, 1, 2), (1, 2)):
        if d * (k - 1) + 1 > n + 2 * p:
            with pytest.raises(ConvlensError):
                output_size(n, k, s, p, d)
            continue
        got = F.conv1d(torch.zeros(1, 1, n), torch.zeros(1, 1, k), stride=s, padding=p, dilation=d).shape[-1]
        try:
            assert output_size(n, k, s, p, d)["output"] == got
            accepted += 1
        except ConvlensError as exc:
            assert f"floor to {got} " in str(exc)
            assert output_size(n, k, s, p, d, floor=True)["output"] == got
            refused += 1
    assert accepted > 500 and refused > 300


def test_layer_formula_equals_torch_for_pooling_with_ceil_mode():
    for n, k, s, p, ceil in itertools.product(range(3, 16), (2, 3), (1, 2, 3), (0, 1), (False, True)):
        if 2 * p > k or k > n + 2 * p:
            continue
        for layer in (nn.MaxPool2d(k, s, p, ceil_mode=ceil), nn.AvgPool2d(k, s, p, ceil_mode=ceil)):
            y = layer(torch.zeros(1, 2, n, n + 1))
            pred, _ = layer_output_shape(layer, (1, 2, n, n + 1))
            assert pred == tuple(y.shape), (layer, n)


def test_layer_formula_for_transposed_same_padding_and_adaptive():
    x = torch.zeros(1, 4, 9, 13)
    layers = [nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1), nn.Conv2d(4, 5, 3, padding="same"),
              nn.Conv2d(4, 5, (3, 5), stride=(2, 3), dilation=(2, 1), padding=(1, 2)), nn.AdaptiveAvgPool2d((2, 3)),
              nn.Flatten(), nn.ZeroPad2d((1, 2, 3, 4)), nn.Upsample(scale_factor=2), nn.Conv1d(4, 2, 3, stride=2)]
    for layer in layers:
        inp = x.flatten(2) if isinstance(layer, nn.Conv1d) else x
        pred, _ = layer_output_shape(layer, tuple(inp.shape))
        assert pred == tuple(layer(inp).shape), layer


def test_timm_same_padding_conv():
    from timm.layers import Conv2dSame

    for n, s in itertools.product((7, 8, 9, 224), (1, 2, 3)):
        layer = Conv2dSame(2, 3, 3, stride=s)
        pred, _ = layer_output_shape(layer, (1, 2, n, n))
        assert pred == tuple(layer(torch.zeros(1, 2, n, n)).shape)


def test_pool_layer_depth_and_torch():
    r = pool_layer((4, 4, 1), kernel=2, stride=2)
    assert r["output"] == (2, 2, 1) == r["torch_output"]
    r = pool_layer((13, 13, 256), kernel=3, stride=2, kind="avg")
    assert r["output"] == (6, 6, 256) == r["torch_output"] and r["depth"] == "D2 = D1 = 256"
