"""Hooks never outlive their use, and explaining many images does not grow memory."""
from __future__ import annotations

import gc
import tracemalloc

import pytest
import torch
import torch.nn as nn

from convlens.errors import ConvlensError
from convlens.explain import capture_activations, count_hooks, explain_image, gradients_start_at


def test_capture_records_outputs_and_removes_hooks():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(4, 2, 3))
    x = torch.randn(2, 1, 8, 8)
    before = count_hooks(net)
    with capture_activations(net, ["0", "2"]) as acts:
        assert count_hooks(net) == before + 2
        out = net(x)
    assert count_hooks(net) == before
    assert acts["0"].shape == (2, 4, 8, 8) and acts["2"].shape == (2, 2, 6, 6)
    assert torch.equal(acts["2"], out.detach())
    # the in-place ReLU after conv 0 must not have changed what was recorded (it is cloned)
    assert (acts["0"] < 0).any()
    assert torch.allclose(acts["0"], net[0](x))


def test_hooks_removed_on_exception():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    with pytest.raises(RuntimeError, match="boom"):
        with capture_activations(net, ["0", "1"]):
            raise RuntimeError("boom")
    assert count_hooks(net) == 0
    # an error inside the forward pass too (wrong channel count)
    with pytest.raises(RuntimeError):
        with capture_activations(net, ["0"]):
            net(torch.zeros(1, 3, 8, 8))
    assert count_hooks(net) == 0


def test_unknown_layer_name_is_a_user_error():
    net = nn.Sequential(nn.Conv2d(1, 2, 3))
    with pytest.raises(ConvlensError, match="'nope' is not a module"):
        with capture_activations(net, ["nope"]):
            pass
    assert count_hooks(net) == 0


def test_gradients_start_at_restores_model_even_on_error():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))
    net[0].weight.requires_grad_(False)  # a partly frozen model keeps its own flags
    flags = [p.requires_grad for p in net.parameters()]
    with pytest.raises(ValueError):
        with gradients_start_at(net, net[1]):
            assert not any(p.requires_grad for p in net.parameters())
            raise ValueError
    assert [p.requires_grad for p in net.parameters()] == flags
    assert count_hooks(net) == 0


def test_gradcam_library_object_leaks_hooks_unless_released(lite0):
    """The control for the memory test: a CAM object that is not released keeps its hooks."""
    from pytorch_grad_cam import GradCAM

    before = count_hooks(lite0.model)
    cam = GradCAM(lite0.model, [lite0.model.bn2])
    assert count_hooks(lite0.model) == before + 2
    cam.activations_and_grads.release()
    assert count_hooks(lite0.model) == before


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_explaining_many_images_does_not_grow_memory(fashion_ex, fashion):
    """1,000 explanations (prediction + Grad-CAM + 3 feature-map layers) of real 28x28 images:
    hook count, Python objects, traced allocations and RSS stay flat after a warm-up."""
    images = fashion.test.images[:40]
    model = fashion_ex.model
    hooks0 = count_hooks(model)
    for i in range(20):  # warm-up: caches (layer trace, allocator pools) fill here
        explain_image(fashion_ex, images[i % 40])
    gc.collect()
    objs0, rss0 = len(gc.get_objects()), _rss_bytes()
    tracemalloc.start()
    mem0 = tracemalloc.get_traced_memory()[0]
    preds = []
    for i in range(1000):
        e = explain_image(fashion_ex, images[i % 40])
        preds.append(e.cam.pred)
        del e
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - mem0
    tracemalloc.stop()
    assert count_hooks(model) == hooks0
    assert len(gc.get_objects()) - objs0 < 300, "Python objects accumulate across explanations"
    assert grown < 256 * 1024, f"traced allocations grew by {grown} bytes over 1,000 explanations"
    assert _rss_bytes() - rss0 < 30 * 2**20
    assert all(p.grad is None for p in model.parameters()), "explaining must not leave weight gradients behind"
    assert len(set(preds)) > 1  # real, different images went through
    # control: the same measures do see a leak (100 explanations kept alive)
    objs1 = len(gc.get_objects())
    tracemalloc.start()
    kept = [explain_image(fashion_ex, images[i % 40]) for i in range(100)]
    leaked = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(gc.get_objects()) - objs1 > 300 and leaked > 256 * 1024
    del kept
