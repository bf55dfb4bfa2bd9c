"""A real run folder (grey Fashion-MNIST CNN), its preprocessing, reports and the CLI verbs."""
from __future__ import annotations

import argparse
import re

import numpy as np
import pytest
import torch
from PIL import Image

from convlens.errors import ConvlensError
from convlens.explain import explain_image, load_model, prepare_image


def run_cli(argv: list[str]) -> int:
    """``convlens explain ...`` as the entry point runs it (ConvlensError -> exit 2)."""
    from convlens.explain.cli import register

    parser = argparse.ArgumentParser(prog="convlens")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConvlensError as exc:
        print(f"convlens: error: {exc}")
        return 2


def test_run_folder_is_rebuilt_with_its_grey_preprocessing(fashion_run, fashion_ex, fashion, tmp_path):
    assert fashion_ex.input_size == (1, 28, 28) and fashion_ex.classes[0] == "T-shirt/top"
    assert fashion_ex.mean == (0.2860,) and fashion_ex.std == (0.3530,)
    # a test image saved as a PNG file and read back goes through the run's preprocessing to
    # exactly the pixels (and so the prediction) the model was evaluated on
    pix = fashion.test.images[3]
    path = tmp_path / "item.png"
    Image.fromarray(pix[0].numpy(), mode="L").save(path)
    a = prepare_image(path, fashion_ex)
    assert torch.equal(a.pixels, pix)
    e = explain_image(fashion_ex, path, classes=["Trouser"])
    with torch.no_grad():
        want = fashion_ex.model((pix.float()[None] / 255 - 0.2860) / 0.3530).softmax(-1)[0].numpy()
    np.testing.assert_allclose(e.cam.probs, want, rtol=1e-4, atol=1e-6)
    assert e.cam.cams[0].heatmap.shape == (28, 28) and e.cam.cams[1].class_name == "Trouser"
    assert [fm.layer for fm in e.feature_maps] == ["layer1.2", "layer2.2", "layer2"]
    # an RGB photo is converted to the grey 28x28 the model takes
    b = prepare_image(_rgb_photo(tmp_path), fashion_ex)
    assert b.pixels.shape == (1, 28, 28) and b.x.shape == (1, 1, 28, 28)


def _rgb_photo(tmp_path):
    p = tmp_path / "rgb.jpg"
    Image.new("RGB", (60, 40), (200, 30, 30)).save(p)
    return p


def test_report_of_the_most_confidently_wrong_test_images(fashion_run, tmp_path):
    from convlens.explain.report import most_confidently_wrong, report_wrong

    ex, test, wrong, ev = most_confidently_wrong(fashion_run, n=3)
    assert len(test) == 400 and len(wrong) == 3
    conf = [float(ev.probs[i, ev.preds[i]]) for i in wrong]
    assert all(int(ev.preds[i]) != int(test.labels[i]) for i in wrong)
    assert conf == sorted(conf, reverse=True)
    others = [i for i in range(len(test)) if int(ev.preds[i]) != int(test.labels[i]) and i not in wrong]
    assert all(float(ev.probs[i, ev.preds[i]]) <= conf[-1] for i in others)
    index = report_wrong(fashion_run, tmp_path / "wrong", n=3)
    html = index.read_text()
    pages = re.findall(r"href='(wrong\d\d-test\d+\.html)'", html)
    assert len(pages) == 3 and f"wrong01-test{wrong[0]}.html" == pages[0]
    page = (tmp_path / "wrong" / pages[0]).read_text()
    true = ex.classes[int(test.labels[wrong[0]])]
    assert f"WRONG: true class {true}" in page.replace("&#x27;", "'")
    assert page.count("data:image/png;base64,") == 2 and "src='http" not in page  # self-contained


def test_cli_verbs_write_their_figures(fashion_run, cat_path, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli(["explain", "cam", "efficientnet_lite0", str(cat_path), "--class", "tiger cat", "--out", str(out)]) == 0
    assert "tabby, tabby cat" in capsys.readouterr().out
    assert run_cli(["explain", "feature-maps", str(fashion_run), str(_rgb_photo(tmp_path)), "--layers", "0", "layer2", "--out", str(out)]) == 0
    assert run_cli(["explain", "filters", str(fashion_run), "--out", str(out)]) == 0
    assert run_cli(["explain", "report", "efficientnet_lite0", str(cat_path), "--out", str(out / "rep")]) == 0
    assert run_cli(["explain", "layers", str(fashion_run)]) == 0
    assert "layer2  " in capsys.readouterr().out
    for name in ("cat-cam-gradcam.png", "rgb-feature-maps.png", "cnn-fashion-filters.png", "rep/cat.html"):
        f = out / name
        assert f.is_file() and f.stat().st_size > 5000, name
    assert "href='cat.html'" in (out / "rep" / "index.html").read_text()
    assert Image.open(out / "cat-cam-gradcam.png").size[0] > 600


@pytest.mark.parametrize("argv, message", [
    (["explain", "cam", "efficientnet_lite0", "{cat}", "--class", "cat"], "--class 'cat' matches"),
    (["explain", "cam", "efficientnet_lite0", "{bad}"], "not an image file"),
    (["explain", "feature-maps", "{run}", "{cat}", "--layers", "fc1"], "--layers 'fc1': no such layer"),
    (["explain", "cam", "dnn", "{cat}"], "model 'dnn' has no pretrained weights to explain"),
    (["explain", "cam", "{run}", "{cat}", "--method", "bestcam"], "unknown CAM method"),
    (["explain", "report", "efficientnet_lite0", "--wrong", "3"], "--wrong needs a run folder"),
    (["explain", "cam", "runs/missing-run/", "{cat}"], "no such run folder"),
])
def test_cli_user_mistakes_exit_2_with_one_line(argv, message, fashion_run, cat_path, tmp_path, capsys):
    bad = tmp_path / "readme.jpg"
    bad.write_text("hello")
    argv = [a.format(cat=cat_path, bad=bad, run=fashion_run) for a in argv] + ["--out", str(tmp_path / "o")]
    assert run_cli(argv) == 2
    out = capsys.readouterr().out.strip()
    assert message in out and len(out.splitlines()) == 1, out


def test_dnn_run_says_it_has_no_conv_layer(tmp_path, cat_path):
    from convlens.engine import model_meta, save_model_checkpoint
    from convlens.models import create_model
    from convlens.runs import RunDir

    m = create_model("dnn")
    run = RunDir.create(tmp_path / "dnn-run", {"data": "fashion-mnist", "model": "dnn"}, kind="train")
    save_model_checkpoint(run.checkpoints_dir / "best.ckpt", m, model_meta(m, "dnn", [str(i) for i in range(10)]))
    ex = load_model(run.path)
    with pytest.raises(ConvlensError, match="model 'dnn' has no convolutional layer"):
        explain_image(ex, cat_path)


def test_rgb_transfer_style_run_uses_its_recorded_crop(tmp_path, shared_data):
    """An EfficientNet-Lite0 with a 2-class head saved as a run (what `transfer` writes): the
    run's recorded preprocessing (bicubic, crop_pct 0.875, mean = std = 0.5) is applied."""
    from convlens.data.folders import Preprocess, load_image
    from convlens.engine import model_meta, save_model_checkpoint
    from convlens.models import create_model
    from convlens.runs import RunDir

    torch.manual_seed(0)
    m = create_model("efficientnet_lite0", pretrained=True, num_classes=2)
    run = RunDir.create(tmp_path / "tl", {"data": str(shared_data / "catanddog")}, kind="transfer")
    save_model_checkpoint(run.checkpoints_dir / "best.ckpt", m, model_meta(m, "efficientnet_lite0", ["Cat", "Dog"]))
    ex = load_model(run.path)
    assert ex.classes == ["Cat", "Dog"] and ex.mean == (0.5, 0.5, 0.5)
    assert (ex.preprocess.image_size, ex.preprocess.crop_pct, ex.preprocess.interpolation) == (224, 0.875, "bicubic")
    photo = shared_data / "catanddog" / "test" / "Cat" / sorted(p.name for p in (shared_data / "catanddog" / "test" / "Cat").iterdir())[0]
    e = explain_image(ex, photo, classes=["Dog"])
    assert torch.equal(e.image.pixels, load_image(photo, Preprocess(224, 0.875, "bicubic", 3)))
    assert e.cam.probs.shape == (2,) and abs(e.cam.probs.sum() - 1) < 1e-5
    assert {c.class_name for c in e.cam.cams} == {"Cat", "Dog"}
