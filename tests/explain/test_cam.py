"""CAMs: the library's maps, the right class, on the cat, in one pass."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from convlens.errors import ConvlensError
from convlens.explain import compute_cam, compute_feature_maps, explain_image, prepare_image
from convlens.explain.cam import METHODS

from explain_fixtures import CAT_BOX, HEAD_BOX, box_to_input

CAT_CLASSES = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def heat_fraction(heat: np.ndarray, box) -> tuple[float, float]:
    """(share of the total heat inside box, share of the image area inside box)."""
    x0, y0, x1, y1 = box
    inside = heat[y0:y1, x0:x1].sum()
    return float(inside / heat.sum()), (x1 - x0) * (y1 - y0) / heat.size


def density_ratio(inside: float, area: float) -> float:
    """Heat per pixel inside the box / heat per pixel outside (1 = no concentration)."""
    return (inside / area) / max((1 - inside) / (1 - area), 1e-12)


def test_cat_prediction_and_cam_concentrates_on_the_cat(lite0, cat_path):
    r = compute_cam(lite0, cat_path, classes=["tabby"])
    assert r.pred in CAT_CLASSES, lite0.classes[r.pred]
    assert sum(r.probs[c] for c in CAT_CLASSES) > 0.8
    size = Image.open(cat_path).size
    pp = lite0.preprocess
    cat = box_to_input(CAT_BOX, size, pp.image_size, pp.crop_pct)
    head = box_to_input(HEAD_BOX, size, pp.image_size, pp.crop_pct)
    for cc in r.cams:
        assert cc.heatmap.shape == (224, 224)
        # nearly no heat on the wall or the floor (the box covers 88% of the input)
        inside, area = heat_fraction(cc.heatmap, cat)
        assert inside > 0.95 and density_ratio(inside, area) > 2, (inside, area)
        # the hottest 5% of pixels lie on the head (51% of the input; chance would put half
        # of them outside), and the head holds more than its share of all the heat
        x0, y0, x1, y1 = head
        on_head = np.zeros(cc.heatmap.shape, bool)
        on_head[y0:y1, x0:x1] = True
        hottest = cc.heatmap >= np.quantile(cc.heatmap, 0.95)
        assert (hottest & on_head).sum() / hottest.sum() > 0.9
        inside, area = heat_fraction(cc.heatmap, head)
        assert density_ratio(inside, area) > 1.3, (inside, area)


def test_cam_is_class_discriminative_on_a_cat_dog_collage(lite0, cat_path, shared_data):
    """Left half the cat, right half a dog: the cat class's heat goes left, the dog's right."""
    dog_path = shared_data / "catanddog" / "test" / "Dog" / "8100.jpg"
    cat = Image.open(cat_path).convert("RGB").crop((420, 0, 1500, 1080)).resize((224, 448))
    dog = Image.open(dog_path).convert("RGB")
    w, h = dog.size
    s = min(w, h)
    dog = dog.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)).resize((224, 448))
    collage = Image.new("RGB", (448, 448))
    collage.paste(cat, (0, 0))
    collage.paste(dog, (224, 0))
    probs = compute_cam(lite0, collage).probs
    dog_class = int(np.argmax(probs[151:269])) + 151  # ImageNet dogs are 151-268
    cat_class = max(CAT_CLASSES, key=lambda c: probs[c])
    r = compute_cam(lite0, collage, classes=[cat_class, dog_class])
    cat_map, dog_map = r.cams[1].heatmap, r.cams[2].heatmap
    half = cat_map.shape[1] // 2
    assert cat_map[:, :half].sum() / cat_map.sum() > 0.7
    assert dog_map[:, half:].sum() / dog_map.sum() > 0.7


def test_one_pass_equals_the_separate_passes(lite0, cat_path):
    """explain_image's single pass (gradients from the target layer, feature maps captured on
    the way, classes batched) gives exactly the library's maps and a plain forward's outputs."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    lite0.model.zero_grad(set_to_none=True)
    e = explain_image(lite0, cat_path, classes=["Egyptian cat"])
    assert all(p.grad is None for p in lite0.model.parameters()), "no weight gradients computed"
    img = prepare_image(cat_path, lite0)
    with torch.no_grad():
        probs = lite0.model(img.x).softmax(-1)[0].numpy()
    np.testing.assert_allclose(e.cam.probs, probs, rtol=1e-4, atol=1e-6)
    ref = GradCAM(lite0.model, [lite0.model.bn2])
    try:
        for cc in e.cam.cams:
            want = ref(img.x, [ClassifierOutputTarget(cc.class_index)])[0]
            np.testing.assert_allclose(cc.heatmap, want, atol=1e-4)
    finally:
        ref.activations_and_grads.release()
    assert e.cam.cams[1].class_index == 285 and not np.allclose(e.cam.cams[0].heatmap, e.cam.cams[1].heatmap)
    sep = compute_feature_maps(lite0, cat_path, [fm.layer for fm in e.feature_maps])
    for a, b in zip(e.feature_maps, sep):
        np.testing.assert_allclose(a.activations, b.activations, atol=1e-5)
        assert list(a.order[:16]) == list(b.order[:16])
    assert all(p.requires_grad for p in lite0.model.parameters())
    lite0.model.zero_grad(set_to_none=True)  # the library's reference pass left gradients


@pytest.mark.parametrize("method", ["gradcam++", "layercam", "xgradcam", "eigencam"])
def test_other_methods_give_maps_on_the_cat(lite0, cat_path, method):
    r = compute_cam(lite0, cat_path, method=method)
    h = r.cams[0].heatmap
    assert h.shape == (224, 224) and h.min() >= 0 and abs(h.max() - 1) < 1e-4
    size = Image.open(cat_path).size
    cat = box_to_input(CAT_BOX, size, 224, lite0.preprocess.crop_pct)
    assert heat_fraction(h, cat)[0] > 0.9


def test_scorecam_on_grayscale_cnn(fashion_ex, fashion):
    """Score-CAM (one forward per channel) on the small grey model: the predicted class is the
    plain forward's, not one of the masked copies'."""
    x = fashion.test.images[0]
    r = compute_cam(fashion_ex, x, method="scorecam")
    with torch.no_grad():
        want = int(fashion_ex.model(prepare_image(x, fashion_ex).x).argmax())
    assert r.pred == want == r.cams[0].class_index
    assert r.cams[0].heatmap.shape == (28, 28)


def test_class_names_resolve_or_fail_in_one_line(lite0):
    assert lite0.class_index("tabby") == 281
    assert lite0.class_index("Tiger Cat") == 282
    assert lite0.class_index("281") == 281
    assert lite0.class_index("persian") == 283  # one whole-word match
    with pytest.raises(ConvlensError, match=r"--class 'cat' matches 7 classes \(281 'tabby, tabby cat'; 282 'tiger cat'") as exc:
        lite0.class_index("cat")
    assert "\n" not in str(exc.value)
    with pytest.raises(ConvlensError, match="not one of the model's 1000 classes") as exc:
        lite0.class_index("xylophonist")
    assert "\n" not in str(exc.value)
    with pytest.raises(ConvlensError, match="out of range"):
        lite0.class_index(1000)


def test_non_image_file_and_unknown_method(lite0, tmp_path, cat_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a picture")
    with pytest.raises(ConvlensError, match="notes.jpg: not an image file"):
        compute_cam(lite0, bad)
    with pytest.raises(ConvlensError, match="no such image file"):
        compute_cam(lite0, tmp_path / "missing.jpg")
    with pytest.raises(ConvlensError, match="unknown CAM method; choose one of gradcam"):
        compute_cam(lite0, cat_path, method="magiccam")
    assert {"gradcam", "gradcam++", "scorecam", "eigencam", "layercam"} <= set(METHODS)


@pytest.mark.parametrize("name, target", [("tv/resnet18", "net.layer4"), ("resnet18", "layer4"), ("fashion_vgg", "features")])
def test_torchvision_timm_and_own_models_match_the_library(name, target, cat_path):
    """Untrained weights are enough to check the plumbing: auto target layer, one pass = library."""
    from pytorch_grad_cam import GradCAMPlusPlus
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from convlens.explain import from_module
    from convlens.models import create_model

    torch.manual_seed(0)
    ex = from_module(create_model(name))
    r = compute_cam(ex, cat_path, method="gradcam++", classes=[3])
    assert r.layer == target
    img = prepare_image(cat_path, ex)
    ref = GradCAMPlusPlus(ex.model, [ex.model.get_submodule(target)])
    try:
        for cc in r.cams:
            want = ref(img.x, [ClassifierOutputTarget(cc.class_index)])[0]
            np.testing.assert_allclose(cc.heatmap, want, atol=1e-4)
    finally:
        ref.activations_and_grads.release()
