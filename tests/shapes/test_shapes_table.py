"""Per-layer tables: totals of known networks, formula == forward pass on many architectures,
receptive fields against gradients, memory, frozen parameters, run folders."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from convlens.errors import ConvlensError
from convlens.shapes.table import cross_check, layer_table, model_table

# (name, create_model kwargs, input C,H,W or None for the model's own); small inputs keep it fast
ARCHS = [
    ("dnn", {}, None), ("cnn", {}, None), ("cnn_chapter", {}, None), ("fashion_vgg", {}, None),
    ("efficientnet_lite0", {}, (3, 32, 32)), ("tf_efficientnet_b0", {}, (3, 33, 33)),  # TF 'same' padding
    ("resnet18", {}, (3, 32, 32)), ("mobilenetv3_small_100", {}, (3, 32, 32)), ("convnext_atto", {}, (3, 32, 32)),
    ("vit_tiny_patch16_224", {"img_size": 32}, (3, 32, 32)),
    ("tv/vgg16", {}, (3, 32, 32)), ("tv/resnet18", {}, (3, 64, 64)), ("tv/alexnet", {}, (3, 67, 67)),
    ("tv/googlenet", {"init_weights": False}, (3, 64, 64)), ("tv/densenet121", {}, (3, 32, 32)),
    ("tv/mobilenet_v2", {}, (3, 32, 32)), ("tv/shufflenet_v2_x0_5", {}, (3, 32, 32)),
    ("tv/convnext_tiny", {}, (3, 32, 32)), ("tv/vit_b_16", {"image_size": 32}, (3, 32, 32)),
]
FORMULA_TYPES = ("Conv1d", "Conv2d", "Conv3d", "Conv2dSame", "ConvTranspose2d", "MaxPool2d", "AvgPool2d",
                 "AdaptiveAvgPool2d", "Linear", "Flatten", "BatchNorm2d", "ReLU", "Dropout")


@pytest.mark.parametrize("name,kwargs,shape", ARCHS, ids=[a[0] for a in ARCHS])
def test_formula_shape_equals_forward_pass(get_model, name, kwargs, shape):
    model = get_model(name, **kwargs)
    # shapes seen by our own, independent forward hooks
    seen: dict[str, tuple] = {}

    def record(name: str):
        def hook(mod, args, out) -> None:  # returns None: a hook's return value would replace the output
            seen.setdefault(name, tuple(out.shape[1:]))
        return hook

    hooks = [m.register_forward_hook(record(n)) for n, m in model.named_modules() if next(m.children(), None) is None]
    try:
        table = layer_table(model, shape)
    finally:
        for h in hooks:
            h.remove()
    leaf_rows = [r for r in table.rows if not r["name"].endswith("(own ops)")]
    assert len(leaf_rows) >= 4
    for r in leaf_rows:
        assert tuple(r["output_shape"]) == seen[r["name"]], r["name"]
        if r["type"] in FORMULA_TYPES:
            assert r["formula_ok"] is True, (r["name"], r["formula_shape"], r["output_shape"])
    assert table.totals["formula_mismatches"] == []
    covered = sum(r["formula_ok"] is True for r in leaf_rows)
    assert covered / len(leaf_rows) > 0.75, f"only {covered}/{len(leaf_rows)} layers have a formula"
    assert table.totals["params"] == sum(p.numel() for p in model.parameters())
    assert table.totals["params_in_forward"] + _uncalled_params(model, table) == table.totals["params"]


def _uncalled_params(model: nn.Module, table) -> int:
    names = {r["name"].removesuffix(" (own ops)").replace("(model)", "") for r in table.rows}
    return sum(p.numel() for n, m in model.named_modules() for p in m.parameters(recurse=False)
               if not any(n == x or n.startswith(x + ".") for x in names))


@pytest.mark.parametrize("name,kwargs,shape", [a for a in ARCHS if a[0] in
                         ("cnn", "efficientnet_lite0", "vit_tiny_patch16_224", "tv/vit_b_16", "convnext_atto")],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_cross_check_with_torchinfo_and_fvcore(get_model, name, kwargs, shape):
    model = get_model(name, **kwargs)
    table = layer_table(model, shape)
    checks = cross_check(model, table)
    whats = {c["what"] for c in checks}
    assert {"parameters", "trainable parameters", "leaf output shapes", "conv MACs"} <= whats
    assert all(c["match"] for c in checks), [c for c in checks if not c["match"]]


def test_resnet18_and_vgg16_totals(get_model):
    r18 = model_table(get_model("tv/resnet18"), (3, 64, 64), check=False)
    assert r18.totals["params"] == 11_689_512
    vgg = model_table(get_model("tv/vgg16"), (3, 32, 32), check=False)
    assert vgg.totals["params"] == 138_357_544
    assert r18.totals["weights"] + r18.totals["biases"] == 11_689_512


def test_resnet18_at_224_macs_and_receptive_field(get_model):
    t = layer_table(get_model("tv/resnet18"), (3, 224, 224))
    assert t.totals["macs"] == 1_814_073_344  # the "1.8 GFLOPs" of the ResNet paper are MACs
    assert t.totals["receptive_field"] == [435.0, 435.0]
    assert "net.conv1" in t.totals["floored_layers"]  # (224 - 7 + 6)/2 + 1 = 112.5


def test_vgg16_receptive_field(get_model):
    t = layer_table(get_model("tv/vgg16"), (3, 32, 32))
    conv_rf = [r["receptive_field"][0] for r in t.rows if r["type"] in ("Conv2d", "MaxPool2d")]
    assert conv_rf[-2:] == [196, 212]  # conv5_3 and pool5, as published
    assert conv_rf[:3] == [3, 5, 6]


def test_resnet50_receptive_field_v1_and_v1_5():
    """torchvision's ResNet-50 strides in the 3x3 convolution ("v1.5"): 427. Moving the stride
    to the first 1x1 convolution, as in the original v1, gives the published 483."""
    from convlens.models import create_model

    model = create_model("tv/resnet50")
    assert layer_table(model, (3, 64, 64)).totals["receptive_field"] == [427.0, 427.0]  # layer4: 2x2
    for layer in (model.net.layer2, model.net.layer3, model.net.layer4):
        layer[0].conv1.stride, layer[0].conv2.stride = (2, 2), (1, 1)
    t = layer_table(model, (3, 64, 64))
    assert t.totals["receptive_field"] == [483.0, 483.0] and t.totals["formula_mismatches"] == []


def test_fashion_models_counts_match_chapter_notes():
    cnn = model_table("cnn", check=False)
    assert cnn.totals["params"] == 1_475_338 and cnn.totals["flops"] == 8_671_200  # 8.67 MFLOP
    dnn = model_table("dnn", check=False)
    assert dnn.totals["params"] == 235_146 and dnn.totals["flops"] == 2 * (784 * 256 + 256 * 128 + 128 * 10)


class _Chain(nn.Module):
    """Strides, dilation, average pooling, a residual sum and a concatenation."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 2, 5, stride=2)
        self.b = nn.Conv2d(2, 2, 3, dilation=2, padding=2)
        self.pool = nn.AvgPool2d(3, 2)
        self.c = nn.Conv2d(2, 2, 3, padding=1)
        self.d = nn.Conv2d(2, 2, 1)
        self.e = nn.Conv2d(4, 1, 3, stride=2)

    def forward(self, x):
        x = self.pool(self.b(self.a(x)))
        x = x + self.c(x)
        return self.e(torch.cat([x, self.d(x)], 1))


def _grad_extent(model: nn.Module, size: int) -> int:
    """Rows of the input that reach the centre output (all weights positive: nothing cancels)."""
    for p in model.parameters():
        p.data.fill_(0.1)
    x = torch.rand(1, 1, size, size, requires_grad=True)
    y = model(x)
    y[0, 0, y.shape[2] // 2, y.shape[3] // 2].backward()
    rows = (x.grad[0, 0].abs().sum(1) > 0).nonzero().flatten()
    return int(rows.max() - rows.min() + 1)


def test_receptive_field_equals_gradient_support():
    model = _Chain()
    t = layer_table(model, (1, 101, 101))
    rf = t.rows[-1]["receptive_field"]
    # a: 5; b: 5 + 2*2*2 = 13; pool: 13 + 2*2 = 17 (jump 4); c: 17 + 2*4 = 25; e: 25 + 2*4 = 33
    assert rf == [33.0, 33.0]
    assert _grad_extent(model, 101) == 33
    seq = nn.Sequential(nn.Conv2d(1, 1, 3), nn.AvgPool2d(2), nn.Conv2d(1, 1, 3, stride=2), nn.Conv2d(1, 1, 5, dilation=3))
    t = layer_table(seq, (1, 160, 160))
    assert t.rows[-1]["receptive_field"][0] == _grad_extent(seq, 160)


def test_activation_memory_scales_with_batch_and_counts_real_outputs():
    from convlens.models import create_model

    one = layer_table(create_model("cnn"), (1, 28, 28), batch_size=1)
    eight = layer_table(create_model("cnn"), (1, 28, 28), batch_size=8)
    # conv, BN, ReLU, pool per block; fc1, (dropout: identity in eval), fc2, fc
    values = 3 * 32 * 28 * 28 + 32 * 14 * 14 + 3 * 64 * 12 * 12 + 64 * 6 * 6 + 600 + 120 + 10
    assert one.totals["activation_bytes"] == 4 * values
    assert eight.totals["activation_bytes"] == 8 * 4 * values


def test_frozen_parameters(get_model):
    from convlens.models import create_model

    model = create_model("tv/resnet18")
    for n, p in model.named_parameters():
        p.requires_grad = n.startswith("net.fc.")
    t = model_table(model, (3, 64, 64), check=True)
    assert t.totals["trainable"] == 512 * 1000 + 1000 and t.totals["frozen"] == 11_689_512 - 513_000
    fc = [r for r in t.rows if r["name"] == "net.fc"][0]
    assert fc["trainable"] == 513_000 and fc["frozen"] == 0
    conv1 = t.rows[0]
    assert conv1["frozen"] == 9408 and conv1["trainable"] == 0
    assert all(c["match"] for c in t.checks)


def test_exports(tmp_path):
    t = model_table("cnn", check=False)
    t.write_csv(tmp_path / "t.csv")
    t.write_json(tmp_path / "t.json")
    lines = (tmp_path / "t.csv").read_text().splitlines()
    assert len(lines) == 1 + len(t.rows)
    assert lines[1].split(",")[:5] == ["0", "layer1.0", "Conv2d", "1x28x28", "32x28x28"]
    import json

    data = json.loads((tmp_path / "t.json").read_text())
    assert data["totals"]["params"] == 1_475_338 and len(data["rows"]) == len(t.rows)
    records = t.to_records()
    assert records[0]["output_shape"] == [32, 28, 28]
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ConvlensError, match="pandas"):
            t.to_pandas()
    else:
        assert list(t.to_pandas()["params"]) == [r["params"] for r in t.rows]


def test_user_mistakes_are_one_line_errors(tmp_path):
    with pytest.raises(ConvlensError, match="unknown model"):
        model_table("no_such_net", check=False)
    with pytest.raises(ConvlensError, match="no config.json"):
        model_table(tmp_path, check=False)
    with pytest.raises(ConvlensError, match=r"--input 1x5x5: the model's forward pass failed"):
        model_table("cnn", "1x5x5", check=False)
    with pytest.raises(ConvlensError, match="--input"):
        model_table("cnn", "1xfoo", check=False)


def test_run_folder(tmp_path):
    from convlens.engine import model_meta, save_model_checkpoint
    from convlens.models import create_model
    from convlens.runs import RunDir

    model = create_model("fashion_vgg", width=8)
    meta = model_meta(model, "fashion_vgg", [str(i) for i in range(10)], model_kwargs={"width": 8})
    run = RunDir.create(tmp_path / "run", {"model": "fashion_vgg", "model_kwargs": {"width": 8}}, kind="train")
    save_model_checkpoint(run.checkpoints_dir / "best.ckpt", model, meta, epoch=1)
    t = model_table(tmp_path / "run", check=False)
    assert t.input_shape == (1, 28, 28) and "fashion_vgg" in t.model_name
    assert t.totals["params"] == sum(p.numel() for p in model.parameters())
    assert t.totals["params"] != sum(p.numel() for p in create_model("fashion_vgg").parameters())  # kwargs honoured
    assert math.prod(t.rows[-1]["output_shape"]) == 10


def test_model_tensors_are_never_tagged():
    """The receptive-field tag lives on activations only: a buffer written in place during the
    forward pass (a running statistic, a cache) must not carry it into a checkpoint."""

    class Cache(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3, padding=1)
            self.register_buffer("last", torch.zeros(1, 1, 4, 4))

        def forward(self, x):
            self.last.copy_(x)
            return self.conv(x) + self.last

    model = Cache()
    t = layer_table(model, (1, 4, 4))
    assert t.rows[-1]["receptive_field"] == [3.0, 3.0]
    assert not any(hasattr(v, "_convlens_rf") for v in (*model.parameters(), *model.buffers()))
