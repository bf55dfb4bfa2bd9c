"""Benchmark: explain one 224x224 image with EfficientNet-Lite0 (prediction + Grad-CAM + 3
feature-map grids, figures rendered to PNG), after the model is loaded. Target: < 3 s on a
2-core CPU.

Reference, measured in the same run on the same image and model: the naive way, as the
chapter would grow it: a forward pass to predict; pytorch-grad-cam used as its README shows
(a full backward pass into every weight); one more forward pass per feature-map layer with a
hook registered for it (the chapter's 5.4.1 code), plotting the first 16 channels with one
matplotlib axes per channel.

    flock /tmp/convlens-cpu.lock .venv/bin/python benchmarks/explain.py [--repeats 5] [--image PATH]
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = REPO.parent / "shared" / "data" / "images" / "cat.jpg"
TARGET_S = 3.0


def render(fig) -> int:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return len(buf.getvalue())


def ours(ex, image) -> tuple[float, float]:
    """(seconds computing, seconds rendering) for prediction + CAM + 3 feature-map grids."""
    from convlens.explain import explain_image, plot_cam, plot_feature_maps

    t0 = time.perf_counter()
    e = explain_image(ex, image)
    t1 = time.perf_counter()
    render(plot_cam(e.cam))
    render(plot_feature_maps(e.feature_maps, k=16))
    return t1 - t0, time.perf_counter() - t1


def naive(ex, image, layers) -> tuple[float, float]:
    import matplotlib.pyplot as plt
    import numpy as np
    import torch
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.image import show_cam_on_image

    from convlens.explain import prepare_image

    model = ex.model
    t0 = time.perf_counter()
    img = prepare_image(image, ex)
    with torch.no_grad():
        probs = model(img.x).softmax(-1)[0]
    with GradCAM(model=model, target_layers=[model.bn2]) as cam:
        heat = cam(input_tensor=img.x, targets=None)[0]
    maps = {}
    for name in layers:  # the chapter: one hook, one forward pass per layer
        store = {}
        h = model.get_submodule(name).register_forward_hook(lambda m, i, o: store.__setitem__("a", o.detach()))
        with torch.no_grad():
            model(img.x)
        h.remove()
        maps[name] = store["a"][0, :16].numpy()  # first 16 channels, whatever they are
    model.zero_grad(set_to_none=True)
    t1 = time.perf_counter()
    disp = img.display()
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.5))
    axes[0].imshow(disp)
    axes[1].imshow(show_cam_on_image(disp.astype(np.float32), heat, use_rgb=True))
    axes[1].set_title(f"{ex.classes[int(probs.argmax())]} {float(probs.max()):.1%}")
    render(fig)
    for name, a in maps.items():
        fig, axes = plt.subplots(2, 8, figsize=(10, 3))
        for i, ax in enumerate(axes.flat):
            ax.imshow(a[i])
            ax.set_title(f"{name}:{i}", fontsize=6)
            ax.axis("off")
        render(fig)
    return t1 - t0, time.perf_counter() - t1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image", default=str(DEFAULT_IMAGE))
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    from convlens._runtime import set_threads, tune_allocator

    tune_allocator()
    threads = set_threads()
    from convlens.hardware import hardware_line

    print(hardware_line(), flush=True)
    import matplotlib

    matplotlib.use("Agg")
    from convlens.explain import default_feature_layers, load_model

    t = time.perf_counter()
    ex = load_model("efficientnet_lite0")
    load_s = time.perf_counter() - t
    layers = default_feature_layers(ex.model, ex.input_size)
    # warm-up (first-call costs: layer trace, matplotlib fonts, oneDNN kernels) for both
    ours(ex, args.image)
    naive(ex, args.image, layers)
    a, b = [], []
    for _ in range(args.repeats):  # interleaved, so drift on a shared machine hits both alike
        a.append(ours(ex, args.image))
        b.append(naive(ex, args.image, layers))
    tot_a = [c + r for c, r in a]
    tot_b = [c + r for c, r in b]
    ma, mb = statistics.median(tot_a), statistics.median(tot_b)
    print(f"model efficientnet_lite0 loaded in {load_s:.2f} s (not counted); torch threads {threads}; image {args.image}")
    print(f"layers: CAM at bn2, feature maps at {', '.join(layers)}; {args.repeats} repeats, median")
    print(f"convlens explain_image + 2 figures : {ma:.3f} s  (compute {statistics.median(c for c, _ in a):.3f} s, "
          f"render {statistics.median(r for _, r in a):.3f} s)  min {min(tot_a):.3f} max {max(tot_a):.3f}")
    print(f"naive reference (separate passes)  : {mb:.3f} s  (compute {statistics.median(c for c, _ in b):.3f} s, "
          f"render {statistics.median(r for _, r in b):.3f} s)  min {min(tot_b):.3f} max {max(tot_b):.3f}")
    print(f"speed-up vs reference: {mb / ma:.2f}x; target < {TARGET_S:.0f} s: {'MET' if ma < TARGET_S else 'MISSED'}")
    return 0 if ma < TARGET_S else 1


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    sys.exit(main())
