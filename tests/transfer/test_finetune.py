"""Fine-tuning: what is frozen stays frozen (BatchNorm statistics included), what is not
learns, and the pretrained layers' learning rate holds the ratio asked for."""
from __future__ import annotations

import copy
from pathlib import Path

import torch

from convlens.data import DatasetSplits, ImageTensors
from convlens.transfer.backbones import load_backbone
from convlens.transfer.fine_tune import param_groups_fn, prepare_fine_tune


def _tiny_backbone():
    b = load_backbone("mobilenetv3_small_050", num_classes=2, pretrained=False)
    b.model.pretrained_cfg["input_size"] = (3, 32, 32)  # keep the engine from resizing to 224: a fast test
    return b


def _splits(n: int = 24) -> DatasetSplits:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 2
    x = torch.randint(0, 120, (n, 3, 32, 32), generator=g, dtype=torch.uint8) + (y * 100).view(-1, 1, 1, 1).to(torch.uint8)
    data = ImageTensors(x, y, ["a", "b"], "toy")
    return DatasetSplits(data, data.subset(range(8)), "toy")


def test_frozen_parameters_and_bn_statistics_do_not_change_unfrozen_ones_do(tmp_path: Path) -> None:
    from convlens.engine import TrainConfig, train

    b = _tiny_backbone()
    info = prepare_fine_tune(b, unfreeze=1, unfreeze_from=None)
    trainable = set(info["trainable"])
    before = copy.deepcopy(b.model.state_dict())
    cfg = TrainConfig(data="toy", model=b.name, epochs=1, batch_size=8, lr=1e-2, val_size=0, out=str(tmp_path), name="ft",
                      progress=False, eval_batch_size=8)
    train(cfg, model=b.model, data=_splits(), param_groups=param_groups_fn(info["head"], 0.1), kind="transfer", report=False)
    after = b.model.state_dict()
    params = {n for n, _ in b.model.named_parameters()}
    frozen_bn = {name for name, m in b.model.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                 and not any(f"{name}.{p}" in trainable for p, _ in m.named_parameters(recurse=False))}
    checked = {"trainable": 0, "frozen": 0, "frozen_bn_buffers": 0}
    for k, v in before.items():
        owner = k.rsplit(".", 1)[0]
        if k in trainable:
            assert not torch.equal(v, after[k]), f"{k} is trainable but did not change"
            checked["trainable"] += 1
        elif k in params:
            assert torch.equal(v, after[k]), f"{k} is frozen but changed"
            checked["frozen"] += 1
        elif owner in frozen_bn:
            assert torch.equal(v, after[k]), f"{k}: a frozen BatchNorm's statistics changed (train mode)"
            checked["frozen_bn_buffers"] += 1
    assert min(checked.values()) > 0 and info["frozen_bn"] == len(frozen_bn), checked


def test_lr_groups_hold_the_ratio_through_the_engine() -> None:
    from convlens.engine import ClassifierModule, TrainConfig

    b = _tiny_backbone()
    info = prepare_fine_tune(b, unfreeze=2, unfreeze_from=None)
    cfg = TrainConfig(model=b.name, lr=3e-3, optimizer="adamw")
    module = ClassifierModule(b.model, cfg, {}, [], param_groups_fn(info["head"], 0.25))
    opt = module.configure_optimizers()
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs == {"head": 3e-3, "pretrained": 3e-3 * 0.25}
    in_groups = {id(p) for g in opt.param_groups for p in g["params"]}
    assert in_groups == {id(p) for p in b.model.parameters() if p.requires_grad}
    head_ids = {id(p) for p in b.model.get_classifier().parameters()}
    assert {id(p) for p in next(g for g in opt.param_groups if g["name"] == "head")["params"]} == head_ids
