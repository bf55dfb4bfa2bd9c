"""DistributedDataParallel through the engine, on CPU with gloo and real Fashion-MNIST.

Two processes of per-rank batch 50 for one epoch must end with the weights of one process with
batch 100: rank r takes positions r, r+2, ... of the epoch's seeded order, so together the two
ranks' k-th batches are exactly the one process's k-th batch, and DDP averages the two mean
gradients into that batch's mean gradient. The model is the chapter's DNN with dropout off: no
BatchNorm (per-rank statistics would differ from the whole batch's; SyncBatchNorm needs a GPU)
and no random masks (each rank would draw its own); SGD with momentum, whose step is linear in
the gradient, so rounding differences stay rounding differences.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from convlens.data.base import EpochSeededSampler
from convlens.engine import TrainConfig, evaluate_model, load_run_model, prepare_data, read_checkpoint, train
from convlens.engine.distributed import (
    Launch,
    check_devices,
    detect_launch,
    interleave,
    real_in_batch,
    threads_per_rank,
)
from convlens.errors import ConvlensError

REPO = Path(__file__).resolve().parents[2]
TWO_CORES = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="two CPU processes need two cores (--devices 2 is refused)")
# 1,400 images - 200 validation = 1,200 training images: 12 global batches of 100, no padding;
# 301 test images: odd, so rank 1's share ends with one padded image that must not count
DATA = ["--data", "fashion-mnist", "--model", "dnn", "--model-kwargs", "drop_rate=0", "--epochs", "1", "--limit-train", "1400",
        "--val-size", "200", "--limit-test", "301", "--precision", "32-true", "--device", "cpu", "--no-progress",
        "--optimizer", "sgd", "--lr", "0.05"]


def _env() -> dict[str, str]:
    return {**os.environ, "CONVLENS_THREADS": "1", "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def _run(cmd: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=_env(), text=True, capture_output=True, timeout=timeout, check=False)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(run / "checkpoints" / "last.ckpt")["state_dict"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One process, batch 100 (the global batch of two ranks of 50)."""
    out = tmp_path_factory.mktemp("ref")
    cfg = TrainConfig(model="dnn", model_kwargs={"drop_rate": 0.0}, epochs=1, limit_train=1400, val_size=200, limit_test=301,
                      batch_size=100, optimizer="sgd", lr=0.05, precision="32-true", device="cpu", threads=1, progress=False, out=str(out), name="ref")
    return train(cfg, report=False).run.path


@pytest.fixture(scope="module")
def ddp_cli(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("ddp")
    res = _run([sys.executable, "-m", "convlens", "train", *DATA, "--batch-size", "50", "--devices", "2", "--out", str(out)], out)
    return res, out


@pytest.fixture(scope="module")
def torchrun_cli(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("torchrun")
    res = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "convlens", "train",
                *DATA, "--batch-size", "50", "--out", str(out), "--name", "tr"], out)
    return res, out


def _only_run(out: Path) -> Path:
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1, f"rank 1 must not make a run folder of its own: {runs}"
    return runs[0]


@TWO_CORES
@pytest.mark.parametrize("launch", ["ddp_cli", "torchrun_cli"])
def test_two_ranks_end_with_the_weights_of_one_process_with_the_global_batch(launch, reference, request):
    res, out = request.getfixturevalue(launch)
    assert res.returncode == 0, res.stderr[-3000:]
    ref, got = _weights(reference), _weights(_only_run(out))
    assert ref.keys() == got.keys()
    for k in ref:
        # 12 SGD steps (linear in the gradient; Adam's g/sqrt(v) would blow a 1e-9 rounding
        # difference in a near-zero gradient up to a fraction of its step); the two all-reduced
        # halves sum in another order than one batch: ~1e-7
        torch.testing.assert_close(got[k], ref[k], rtol=1e-5, atol=1e-6, msg=lambda m, k=k: f"{k}: {m}")
    # and they trained: 12 steps moved the weights far from the seeded start both began from
    from convlens.models import create_model

    torch.manual_seed(0)
    init = create_model("dnn", drop_rate=0.0).state_dict()
    assert (got["model.fc.weight"] - init["fc.weight"]).abs().max() > 1e-2


@TWO_CORES
@pytest.mark.parametrize("launch", ["ddp_cli", "torchrun_cli"])
def test_cli_under_ddp_prints_once_and_writes_one_complete_run(launch, request):
    res, out = request.getfixturevalue(launch)
    assert res.returncode == 0, res.stderr[-3000:]
    # rank 1 used to die here on the summary only rank 0 has (KeyError 'test_images'), exit 1
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("test accuracy")]
    assert len(lines) == 1 and "301 test images, 1 epochs" in lines[0], res.stdout
    run = _only_run(out)
    for f in ["config.json", "metrics.jsonl", "summary.json", "report.html", "checkpoints/epoch=001.ckpt",
              "checkpoints/last.ckpt", "checkpoints/best.ckpt"]:
        assert (run / f).is_file(), f
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1
    # every validation and test image counted once, not the sampler's padded copy
    assert rows[0]["val_n"] == 200 and rows[0]["test_n"] == 301 and rows[0]["train_n"] == 1200
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test_images"] == 301 and summary["epochs"] == 1
    # the reduced test accuracy and the gathered predictions agree with a fresh evaluation
    model, meta = load_run_model(run, "last")
    cfg = json.loads((run / "config.json").read_text())["config"]
    test = prepare_data(cfg, model, meta)["test"]
    ev = evaluate_model(model, test, 1000, "cpu", precision="32-true")
    assert abs(summary["test_acc"] - ev.acc) < 1e-12 and abs(rows[0]["test_acc"] - ev.acc) < 1e-12
    assert abs(rows[0]["test_loss"] - ev.loss) < 1e-5
    assert 0.4 < ev.acc < 1.0  # 12 SGD steps; chance is 0.1


def test_devices_beyond_the_machine_are_refused_before_anything_starts(tmp_path):
    cores = os.cpu_count() or 1
    res = _run([sys.executable, "-m", "convlens", "train", "--device", "cpu", "--devices", str(cores + 97), "--out", str(tmp_path)],
               tmp_path, timeout=120)
    assert res.returncode == 2
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and f"--devices {cores + 97}" in err[0] and f"{cores} CPU core" in err[0], res.stderr
    assert list(tmp_path.iterdir()) == []  # no run folder, no process, no data loaded
    with pytest.raises(ConvlensError, match="--devices"):
        train(TrainConfig(device="cpu", devices=cores + 1, out=str(tmp_path)))
    check_devices(cores, "cpu")  # as many as there are cores is fine
    with pytest.raises(ConvlensError, match="--num-nodes 0"):
        check_devices(1, "cpu", 0)


def test_launchers_are_read_from_their_environment():
    torchrun = {"RANK": "3", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "WORLD_SIZE": "4", "GROUP_RANK": "1"}
    assert detect_launch(env=torchrun) == Launch("torchrun", 2, 2, 3)
    with pytest.raises(ConvlensError, match="--devices 4: torchrun started 2"):
        detect_launch(devices=4, env=torchrun)
    slurm = {"SLURM_NTASKS": "8", "SLURM_NNODES": "2", "SLURM_NTASKS_PER_NODE": "4", "SLURM_PROCID": "5", "SLURM_JOB_NAME": "cl"}
    assert detect_launch(4, 2, env=slurm) == Launch("slurm", 4, 2, 5)
    # an interactive SLURM shell with one task is no launcher: the flags decide
    assert detect_launch(2, env={"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "bash"}) == Launch("lightning", 2, 1, 0)
    # Lightning's children of `--devices 2 --num-nodes 2` on the second node
    assert detect_launch(2, 2, env={"LOCAL_RANK": "1", "NODE_RANK": "1"}).rank == 3
    assert detect_launch(env={}) == Launch("none", 1, 1, 0)
    assert threads_per_rank(2, 3) == 3


@pytest.mark.parametrize("n,world,bs", [(301, 2, 100), (7, 3, 2), (1, 2, 1000), (1000, 4, 300)])
def test_padding_is_left_out_and_predictions_come_back_in_order(n, world, bs, monkeypatch):
    """Against the engine's own sampler: every image counted once, predictions in test order."""
    shares = []
    for rank in range(world):
        monkeypatch.setattr(EpochSeededSampler, "_rank_world", lambda self, r=rank: (r, world))
        shares.append(list(EpochSeededSampler(n, shuffle=False)))
    assert len({len(s) for s in shares}) == 1  # equal shares: the padding
    kept: list[int] = []
    per = len(shares[0])
    parts = torch.full((world, per, 1), -1.0)
    for rank, share in enumerate(shares):
        for start in range(0, per, bs):
            k = real_in_batch(n, start, len(share[start:start + bs]), rank, world)
            kept += share[start:start + k]
            parts[rank, start:start + k, 0] = torch.tensor(share[start:start + k], dtype=torch.float)
    assert sorted(kept) == list(range(n))
    assert interleave(parts, n)[:, 0].tolist() == list(range(n))


@TWO_CORES
def test_compare_under_ddp_writes_one_comparison(tmp_path):
    """Rank 1 used to name, write and print a comparison folder of its own (its clock's second)."""
    res = _run([sys.executable, "-m", "convlens", "compare", "--models", "dnn,cnn", "--epochs", "1", "--limit-train", "600",
                "--val-size", "100", "--limit-test", "201", "--device", "cpu", "--precision", "32-true", "--no-progress",
                "--devices", "2", "--out", str(tmp_path)], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("report: ") == 1 and res.stdout.count("dnn: test accuracy") == 1, res.stdout
    folder = _only_run(tmp_path)
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["cnn", "dnn", "plots"]
    table = json.loads((folder / "comparison.json").read_text())
    for row in table:
        summary = json.loads((folder / row["model"] / "summary.json").read_text())
        assert row["test accuracy"] == round(summary["test_acc"], 4) and summary["test_images"] == 201


def test_each_rank_draws_its_own_dropout_and_augmentation_stream():
    """Reseeded every epoch (resume gives the same draws), rank 0 as one process, rank 1 apart."""
    from types import SimpleNamespace

    from convlens.engine import ClassifierModule
    from convlens.models import create_model

    module = ClassifierModule(create_model("dnn"), TrainConfig(seed=3), meta={}, eval_names=[])
    draws = {}
    for rank in (0, 1):
        module._trainer = SimpleNamespace(global_rank=rank, current_epoch=2)
        module.on_train_epoch_start()
        draws[rank] = torch.rand(4)
    torch.manual_seed(3 * 1000 + 2)  # the one-process stream of seed 3, epoch 3
    assert torch.equal(draws[0], torch.rand(4))
    assert not torch.equal(draws[0], draws[1])
