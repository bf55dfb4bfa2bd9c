"""Adebayo et al. (2018): the map must depend on the learnt weights."""
from __future__ import annotations

import numpy as np
import torch

from convlens.explain import cam_similarity, compute_cam, model_randomization_check, prepare_image, randomized_copy
from convlens.explain.sanity import randomization_groups


def test_similarity_measures_on_known_maps():
    rng = np.random.default_rng(0)
    a = rng.random((32, 32))
    same = cam_similarity(a, a)
    assert same["spearman"] > 0.999 and same["ssim"] > 0.999
    flipped = cam_similarity(a, 1 - a)
    assert flipped["spearman"] < -0.999
    assert cam_similarity(a, np.zeros((32, 32)))["spearman"] == 0.0  # a blank map ranks nothing


def test_randomized_copy_leaves_model_and_rng_alone(lite0):
    before = {k: v.clone() for k, v in lite0.model.state_dict().items() if k.startswith("classifier")}
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    rnd = randomized_copy(lite0.model, seed=0, prefixes=["classifier"])
    assert torch.equal(torch.rand(1), expected_next), "the global RNG must not move"
    for k, v in before.items():
        assert torch.equal(lite0.model.state_dict()[k], v)
        assert not torch.equal(rnd.state_dict()[k], v)
    assert torch.equal(rnd.conv_stem.weight, lite0.model.conv_stem.weight)  # only the prefix was randomised
    assert randomization_groups(lite0.model) == ["classifier", "bn2", "conv_head"] + [f"blocks.{i}" for i in range(6, -1, -1)] + ["bn1", "conv_stem"]
    from convlens.models import create_model

    assert randomization_groups(create_model("tv/resnet18"))[:3] == ["net.fc", "net.layer4", "net.layer3"]


def test_gradcam_passes_the_model_randomisation_check_on_the_cat(lite0, cat_path):
    res = model_randomization_check(lite0, cat_path, method="gradcam", n_seeds=3)
    assert res.class_index in range(281, 286)
    assert len(res.per_seed) == 3
    assert res.spearman < 0.3 and res.ssim < 0.4, res.per_seed
    assert res.passed
    # control: the *trained* model's map of the same image with a little pixel noise stays
    # nearly the same, so a low similarity above is the weights' doing, not the metric's
    img = prepare_image(cat_path, lite0)
    g = torch.Generator().manual_seed(0)
    noisy = (img.pixels.float() + 4 * torch.randn(img.pixels.shape, generator=g)).clamp(0, 255).to(torch.uint8)
    again = compute_cam(lite0, noisy).cams[0].heatmap
    sim = cam_similarity(res.trained, again)
    assert sim["spearman"] > 0.9 and sim["ssim"] > 0.8, sim


def test_check_on_the_grayscale_cnn(fashion_ex, fashion):
    res = model_randomization_check(fashion_ex, fashion.test.images[1], n_seeds=3, cascading=True)
    assert res.trained.shape == (28, 28)
    assert [g for g, _, _ in res.cascade][:2] == ["fc", "fc2"]
    assert len(res.cascade) == len(randomization_groups(fashion_ex.model))
    assert res.spearman < 0.5
