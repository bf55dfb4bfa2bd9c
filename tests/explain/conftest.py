"""Fixtures of the explain tests: the pretrained EfficientNet-Lite0, the chapter's cat, and a
small FashionCNN trained here on real Fashion-MNIST images, saved as a real run folder."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

@pytest.fixture(scope="session")
def cat_path(shared_data) -> Path:
    p = shared_data / "images" / "cat.jpg"
    assert p.is_file(), p
    return p


@pytest.fixture(scope="session")
def lite0():
    from convlens.explain import load_model

    return load_model("efficientnet_lite0")


@pytest.fixture(scope="session")
def fashion_run(tmp_path_factory, fashion):
    """A FashionCNN trained for 1 epoch on 3,000 real Fashion-MNIST images (plain steps: ~5 s
    instead of the engine's Lightning start-up), written as a run folder the engine can reopen."""
    from convlens.engine import model_meta, save_model_checkpoint
    from convlens.models import create_model
    from convlens.runs import RunDir

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see _one_thread below
    torch.manual_seed(0)
    model = create_model("cnn")
    cfg = model.pretrained_cfg
    mean, std = torch.tensor(cfg["mean"]).view(1, -1, 1, 1), torch.tensor(cfg["std"]).view(1, -1, 1, 1)
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(fashion.train), generator=g)[:3000]
    x_all, y_all = fashion.train.images[idx], fashion.train.labels[idx]
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    for i in range(0, len(idx), 50):
        x = (x_all[i:i + 50].float() / 255 - mean) / std
        loss = F.cross_entropy(model(x), y_all[i:i + 50])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    torch.set_num_threads(threads)
    run = RunDir.create(tmp_path_factory.mktemp("runs") / "cnn-fashion",
                        {"data": "fashion-mnist", "model": "cnn", "seed": 0, "val_size": 0, "limit_test": 400}, kind="train")
    meta = model_meta(model, "cnn", list(fashion.train.classes))
    save_model_checkpoint(run.checkpoints_dir / "best.ckpt", model, meta, epoch=1)
    return run.path


@pytest.fixture(scope="session")
def fashion_ex(fashion_run):
    from convlens.explain import load_model

    return load_model(fashion_run)


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    """One torch thread in these tests: single small images, where a second OpenMP thread
    only waits (on a loaded 2-core machine a 28x28 convolution took 40 ms with 2 threads,
    0.12 ms with 1). Restored afterwards for other packages' tests."""
    n = torch.get_num_threads()
    monkeypatch.setenv("CONVLENS_THREADS", "1")  # what the CLI handlers' set_threads() reads
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
