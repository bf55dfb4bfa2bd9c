"""Nothing lost or misattributed: run folders are made exclusively, failed starts leave no
folder, a crash's temporaries are cleaned, a full or read-only disk is one line and never a
truncated checkpoint under its real name."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _robust_cli import cli_env, one_line_error, run_cli

from convlens.errors import ConvlensError
from convlens.runs import RunDir, atomic_write_bytes, discard_empty_runs

TINY = ["--model", "dnn", "--limit-train", "500", "--limit-test", "200", "--val-size", "100", "--epochs", "1",
        "--no-progress"]


def test_two_runs_started_at_once_into_one_out_get_two_folders(tmp_path):
    """Two runs started together into one --out: run names go down to the second, and before,
    two runs of the same second shared one folder (one's config and checkpoints, both's metrics
    rows) and the first printed the other's accuracy. (Whether these two land in the same
    second depends on the machine's load; test_create_is_exclusive makes the collision certain.)"""
    procs = {seed: subprocess.Popen([sys.executable, "-m", "convlens", "train", *TINY, "--seed", str(seed), "--out", "runs"],
                                    cwd=tmp_path, env=cli_env(tmp_path), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for seed in (1, 2)}
    folders = {}
    for seed, p in procs.items():
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        folder = Path(re.search(r"report: (.+)/report\.html", out).group(1))
        acc = float(re.search(r"test accuracy ([\d.]+)%", out).group(1)) / 100
        folders[seed] = (tmp_path / folder if not folder.is_absolute() else folder, acc)
    names = sorted(f.name for f, _ in folders.values())
    assert len(set(names)) == 2 and all(n.startswith("dnn-fashion-mnist-") for n in names), names
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == names
    for seed, (folder, acc) in folders.items():
        record = json.loads((folder / "config.json").read_text())
        assert record["config"]["seed"] == seed
        rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        assert [r["epoch"] for r in rows] == [1]
        summary = json.loads((folder / "summary.json").read_text())
        assert abs(summary["test_acc"] - acc) < 5e-5 and summary["epochs"] == 1
        ckpts = folder / "checkpoints"
        assert sorted(p.name for p in ckpts.iterdir()) == ["best.ckpt", "epoch=001.ckpt", "last.ckpt"]
        best = torch.load(ckpts / "best.ckpt", map_location="cpu", weights_only=True)
        epoch = torch.load(ckpts / "epoch=001.ckpt", map_location="cpu", weights_only=True)
        assert all(torch.equal(best["state_dict"][k], epoch["state_dict"][k]) for k in epoch["state_dict"])
        # best/last are readable like the epoch files (they were 0600)
        umask = os.umask(0)
        os.umask(umask)
        for name in ("best.ckpt", "last.ckpt", "epoch=001.ckpt"):
            assert (ckpts / name).stat().st_mode & 0o777 == 0o666 & ~umask, name
    # two seeds, two models: the folders hold different weights
    w = [torch.load(f / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"] for f, _ in folders.values()]
    assert any(not torch.equal(w[0][k], w[1][k]) for k in w[0])


def test_same_name_after_a_finished_run_is_refused(tmp_path):
    proc = run_cli(["train", *TINY, "--out", "runs", "--name", "same"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = run_cli(["train", *TINY, "--out", "runs", "--name", "same"], tmp_path)
    assert "already holds a run" in one_line_error(again)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["same"]


def test_create_is_exclusive(tmp_path):
    a = RunDir.create(tmp_path / "runs" / "x", {"n": 1}, kind="train")
    b = RunDir.create(tmp_path / "runs" / "x", {"n": 2}, kind="train")
    c = RunDir.create(tmp_path / "runs" / "x", {"n": 3}, kind="train")
    assert [r.path.name for r in (a, b, c)] == ["x", "x-2", "x-3"]
    assert [r.config["n"] for r in (a, b, c)] == [1, 2, 3]


def test_out_that_is_a_file_is_one_line_in_python_too(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ConvlensError, match="--out .*f.*file"):
        RunDir.create(tmp_path / "f" / "run", {}, kind="train")


def test_a_run_that_fails_before_its_first_epoch_leaves_no_folder(tmp_path):
    proc = run_cli(["train", *TINY[:2], "--limit-train", "50", "--val-size", "100", "--out", "runs", "--name", "early"],
                   tmp_path)
    assert "--val-size 100" in one_line_error(proc)
    assert not (tmp_path / "runs" / "early").exists()


def test_only_empty_runs_are_discarded(tmp_path):
    empty = RunDir.create(tmp_path / "empty", {}, kind="train")
    (empty.path / "lightning_logs").mkdir()
    (empty.path / "lightning_logs" / "hparams.yaml").write_text("{}")
    full = RunDir.create(tmp_path / "full", {}, kind="train")
    full.append_metrics({"epoch": 1, "train_loss": 0.5})
    gone = discard_empty_runs()
    assert empty.path in gone and full.path not in gone
    assert not empty.path.exists() and full.path.is_dir()


def test_stale_temporaries_are_removed_on_resume_and_fresh_ones_kept(tmp_path):
    run = RunDir.create(tmp_path / "r", {}, kind="train")
    (run.path / "checkpoints").mkdir()
    stale = run.path / "checkpoints" / ".last.ckpt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    past = time.time() - 3600
    os.utime(stale, (past, past))
    fresh = run.path / ".metrics.jsonl.def456.tmp"  # as if another process were writing it now
    fresh.write_bytes(b"{}")
    RunDir.open(run.path)  # a reader: only temporaries untouched for 10 minutes go
    assert not stale.exists() and fresh.exists()
    stale.write_bytes(b"half a checkpoint")
    os.utime(stale, (past, past))
    RunDir.open(run.path, resume=True)  # the writer: everything older than this process goes
    assert not stale.exists() and fresh.exists()  # (fresh is newer than this process)


def _mount_tmpfs(path: Path, options: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True,
                         check=False)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root and mount rights): {res.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "small-disk"
    _mount_tmpfs(mnt, "size=300k")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


@pytest.fixture
def read_only_disk(tmp_path):
    mnt = tmp_path / "ro-disk"
    _mount_tmpfs(mnt, "size=64k,ro")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


def test_disk_full_is_one_line_and_leaves_no_truncated_checkpoint(small_disk, tmp_path):
    """300 kB hold the run's record and metrics but not the DNN's first checkpoint (~1.6 MB with
    Adam's state): before, a traceback and a truncated epoch=001.ckpt under its real name."""
    proc = run_cli(["train", *TINY, "--out", str(small_disk)], tmp_path)
    line = one_line_error(proc)
    assert "No space left on device" in line and ".ckpt" in line, line
    for f in small_disk.rglob("*"):
        assert not f.name.endswith(".tmp"), f  # the temporary beside the target is removed
        if f.suffix == ".ckpt":  # whatever carries a checkpoint's name is a whole checkpoint
            torch.load(f, map_location="cpu", weights_only=True)


def test_atomic_write_on_full_disk_keeps_the_old_file(small_disk):
    target = small_disk / "best.ckpt"
    atomic_write_bytes(target, b"old and whole")
    with pytest.raises(OSError) as info:
        atomic_write_bytes(target, b"x" * 400_000)
    assert info.value.filename == str(target)
    assert target.read_bytes() == b"old and whole"
    assert [p.name for p in small_disk.iterdir()] == ["best.ckpt"]


@pytest.mark.parametrize("verb", [["train"], ["transfer", "--data", "x"], ["explain", "filters", "m"], ["graph", "train"]])
def test_read_only_out_is_one_line(verb, read_only_disk, tmp_path):
    proc = run_cli([*verb, "--out", str(read_only_disk / "runs")], tmp_path, timeout=60)
    line = one_line_error(proc)
    assert "--out" in line and "not writable" in line, line


def test_read_only_out_in_python_is_a_convlens_error(read_only_disk):
    with pytest.raises(ConvlensError, match="not writable|cannot create"):
        RunDir.create(read_only_disk / "runs" / "r", {}, kind="train")
