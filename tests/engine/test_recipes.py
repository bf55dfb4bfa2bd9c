"""Training recipes: what each fills in, He et al.'s schedule, airbench's pieces on real CIFAR-10 images."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from convlens.data.registry import DatasetSplits
from convlens.engine import TrainConfig, load_run_model, train
from convlens.engine.evaluate import evaluate_model
from convlens.engine.recipes import _he_optimizer, airbench_lr_wd
from convlens.errors import ConvlensError
from convlens.models import create_model
from convlens.models.cifar import patch_whitening


def test_he_is_the_default_of_cifar_resnets_and_explicit_values_win():
    c = TrainConfig(model="resnet20")
    assert (c.data, c.epochs, c.batch_size, c.lr, c.optimizer, c.momentum, c.weight_decay, c.augment, c.val_size) == \
        ("cifar10", 182, 128, 0.1, "sgd", 0.9, 1e-4, "crop-flip", 5000)
    c = TrainConfig(model="plain56", lr=0.05, epochs=3)
    assert (c.lr, c.epochs, c.batch_size) == (0.05, 3, 128)
    c = TrainConfig(model="cnn")  # the Fashion-MNIST chapter recipe is untouched
    assert (c.data, c.optimizer, c.lr, c.epochs) == ("fashion-mnist", "adam", 1e-3, 5)
    c = TrainConfig(model="resnet20", recipe="none")
    assert c.optimizer == "adam"
    c = TrainConfig(recipe="fast")
    assert (c.model, c.val_size, c.label_smoothing, c.batch_size) == ("cifar_vgg", 0, 0.2, 1024)
    assert TrainConfig.from_dict(c.to_dict()) == c  # re-applying to a saved config changes nothing
    with pytest.raises(ConvlensError, match="--recipe 'bogus'"):
        TrainConfig(recipe="bogus")


def test_airbench_hyperparameters_converted_to_mean_loss():
    k = 1024 * (1 + 1 / 0.15)
    for b in (256, 1024):
        lr, wd = airbench_lr_wd(b)
        assert lr == pytest.approx(11.5 / k * b)          # the same step on the mean as 11.5/k on the sum
        assert lr * wd == pytest.approx(0.0153 * b / k)   # the same shrink per step


@pytest.mark.parametrize("depth,warm", [(20, 0), (110, 400)])
def test_he_schedule_divides_by_ten_at_half_and_three_quarters(depth, warm):
    cfg = TrainConfig(model=f"resnet{depth}")
    module = SimpleNamespace(cfg=cfg, model=create_model(f"resnet{depth}"))
    out = _he_optimizer(module, total_steps=1000)
    opt, sched = out["optimizer"], out["lr_scheduler"]["scheduler"]
    assert opt.defaults["nesterov"] is False and opt.defaults["momentum"] == 0.9 and opt.defaults["weight_decay"] == 1e-4
    lrs = []
    for _ in range(1000):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[warm - 1 if warm else 0] == pytest.approx(0.01 if warm else 0.1)
    assert lrs[warm] == pytest.approx(0.1) and lrs[499] == pytest.approx(0.1)
    assert lrs[500] == pytest.approx(0.01) and lrs[749] == pytest.approx(0.01) and lrs[750] == pytest.approx(0.001)


def test_fast_recipe_on_real_images(cifar_small, tmp_path):
    data = DatasetSplits(cifar_small["train"], cifar_small["test"], "cifar10-small")
    cfg = TrainConfig(recipe="fast", epochs=5, batch_size=40, lr=airbench_lr_wd(40)[0], weight_decay=airbench_lr_wd(40)[1],
                      model_kwargs={"widths": "16,32,32", "tta": 2}, out=str(tmp_path), name="fast", progress=False, threads=1)
    res = train(cfg, data=data)
    model = res.model
    # the stem is the whitening of the (normalised) training images, never trained
    ref = create_model("cifar_vgg", widths="16,32,32")
    mean, std = (torch.tensor(model.pretrained_cfg[k]).view(1, 3, 1, 1) for k in ("mean", "std"))
    patch_whitening(ref.stem, (cifar_small["train"].images.float() / 255 - mean) / std)
    torch.testing.assert_close(model.stem.weight, ref.stem.weight)
    # BatchNorm scales frozen at 1; the shifts learnt
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.equal(m.weight, torch.ones_like(m.weight)) for m in bns)
    assert any(m.bias.abs().sum() > 0 for m in bns)
    # the stem's bias learns for 3 epochs, then stays
    ck = [torch.load(res.run.path / f"checkpoints/epoch={e:03d}.ckpt", weights_only=True)["state_dict"]["model.stem.bias"] for e in (3, 4, 5)]
    assert not torch.equal(ck[0], torch.zeros_like(ck[0])) and torch.equal(ck[1], ck[2]) and torch.equal(ck[0], ck[1])
    # triangular schedule: peak after 23% of the steps (after the first of 5 epochs), 0.07 of it at the end
    lrs = [r["lr"] for r in res.history]
    assert len(lrs) == 5 and lrs[0] < cfg.lr and all(a > b for a, b in zip(lrs, lrs[1:]))
    assert lrs[-1] == pytest.approx(cfg.lr * 0.07, rel=1e-6)
    # the final accuracy is the 6-view TTA model's, and the run folder rebuilds that model
    again, meta = load_run_model(res.run.path, which="last")
    assert again.tta == 2 and meta["model_name"] == "cifar_vgg"
    ev = evaluate_model(again, cifar_small["test"], 100, torch.device("cpu"), precision=res.run.summary()["precision"])
    assert ev.acc == pytest.approx(res.test_acc)
    again.tta = 0
    one_view = evaluate_model(again, cifar_small["test"], 100, torch.device("cpu"), precision=res.run.summary()["precision"])
    assert not torch.allclose(one_view.probs, ev.probs)


def test_keyword_arguments_count_as_set_by_the_user():
    # fashion-mnist and 5 epochs are TrainConfig's defaults, which a recipe would otherwise fill
    assert TrainConfig(recipe="fast", data="fashion-mnist").data == "fashion-mnist"
    assert TrainConfig(recipe="fast").data == "cifar10"
    c = TrainConfig(model="resnet20", epochs=5)
    assert (c.epochs, c.lr, c.batch_size) == (5, 0.1, 128) and c.explicit == ("epochs", "model")
    assert TrainConfig("fashion-mnist", "resnet20").explicit == ("data", "model")  # positional too


def test_explicit_fields_survive_the_recipe_even_at_default_values():
    from dataclasses import replace

    from convlens.cli import build_parser

    c = TrainConfig(model="resnet20", epochs=5, explicit=("epochs",))
    assert c.epochs == 5 and c.lr == 0.1
    assert replace(c, model="plain56").epochs == 5  # compare() replaces the model: still 5
    args = build_parser().parse_args(["compare", "--models", "plain20,resnet20", "--epochs", "5", "--lr", "0.05"])
    from convlens.engine.cli import config_from_args

    cfg = replace(config_from_args(args), model="resnet20")
    assert (cfg.epochs, cfg.lr, cfg.batch_size) == (5, 0.05, 128)


def test_fast_recipe_trains_fashion_mnist_in_its_own_shape(fashion_small, tmp_path):
    # `convlens train --recipe fast --data fashion-mnist`: the data's config (1 channel, 28 px, its
    # mean/std) builds the net, and airbench's training learns the real images
    # batch 50: 300 steps. At batch 100 these 3,000 images gave 50-52% after 8 or 10 epochs (airbench's lr grows
    # with the batch, and there are few steps); the full set at the recipe's batch 1024 reaches 94% (docs/speed.md)
    bs = 50
    cfg = TrainConfig(recipe="fast", data="fashion-mnist", epochs=5, batch_size=bs, lr=airbench_lr_wd(bs)[0],
                      weight_decay=airbench_lr_wd(bs)[1], model_kwargs={"widths": "32,64,64", "tta": 2}, out=str(tmp_path),
                      name="fast-fashion", progress=False, threads=1)  # data: given, so kept though it is the default
    res = train(cfg, data=fashion_small, report=False)
    assert res.model.stem.in_channels == 1 and res.model.stem.out_channels == 8  # 2 signs x 1 channel x 2x2
    assert res.model.pretrained_cfg["input_size"] == (1, 28, 28) and len(res.model.pretrained_cfg["mean"]) == 1
    assert res.test_acc >= 0.80  # 83.8% here (1,000 real test images)


def test_fast_recipe_has_its_own_defaults_for_fashion_mnist():
    from convlens.engine.recipes import FAST, FAST_WIDTHS

    fashion = FAST.per_data["fashion-mnist"]
    c = TrainConfig(recipe="fast", data="fashion-mnist")
    assert (c.epochs, c.model_kwargs) == (fashion["epochs"], fashion["model_kwargs"])
    assert fashion["model_kwargs"]["widths"] != FAST_WIDTHS  # narrower than CIFAR-10's
    c = TrainConfig(recipe="fast")  # CIFAR-10: airbench93's widths, untouched
    assert (c.data, c.epochs, c.model_kwargs["widths"]) == ("cifar10", 10, FAST_WIDTHS)
    c = TrainConfig(recipe="fast", data="fashion-mnist", epochs=8, model_kwargs={"widths": FAST_WIDTHS, "tta": 2})
    assert (c.epochs, c.model_kwargs["widths"]) == (8, FAST_WIDTHS)  # what the user sets wins
