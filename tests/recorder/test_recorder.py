"""The one run recorder: epoch rows, the checkpoint writer, the rule for "best", events, summary
then report. Plain tensors stand in for a model here; the verbs' own tests train real ones."""
from __future__ import annotations

import json
import os
import stat

import pytest
import torch

from convlens.events import RunEvent, collect, read_events
from convlens.runs import BestBy, RunDir, RunRecorder, RunResult, write_checkpoint


def _ckpt(epoch: int) -> dict:
    return {"state_dict": {"model.w": torch.full((3,), float(epoch))}, "convlens": {"model_name": "x"}, "epoch": epoch}


def _row(epoch: int, val_acc: float, val_loss: float = 1.0, train_loss: float = 0.5) -> dict:
    return {"epoch": epoch, "train_loss": train_loss, "val_acc": val_acc, "val_loss": val_loss}


@pytest.fixture
def run(tmp_path):
    return RunDir.create(tmp_path / "r", {"seed": 0}, kind="train")


def test_best_by_accuracy_breaks_ties_by_loss_then_keeps_the_earlier_epoch():
    rows = [_row(1, 0.8, 0.6), _row(2, 0.9, 0.5), _row(3, 0.9, 0.4), _row(4, 0.9, 0.4), _row(5, 0.7)]
    assert BestBy("val_acc").pick(rows)["epoch"] == 3
    assert BestBy("val_loss").pick(rows)["epoch"] == 3
    assert BestBy("last").pick(rows)["epoch"] == 5


def test_a_non_finite_epoch_is_never_best():
    rows = [_row(1, 0.5), _row(2, float("nan")), _row(3, 0.99, train_loss=float("inf")), _row(4, 0.6, val_loss=float("nan"))]
    assert BestBy("val_acc").pick(rows)["epoch"] == 4  # its accuracy is finite; a NaN loss only loses the tie-break
    assert BestBy("val_loss").pick(rows)["epoch"] == 1
    assert BestBy("val_acc").pick([_row(1, float("nan"))]) is None


def test_end_epoch_writes_row_and_checkpoints_best_only_when_better(run):
    events: list[RunEvent] = []
    rec = RunRecorder(run, "val_acc", [collect(events)])
    rec.start(3)
    assert rec.end_epoch(_row(1, 0.5), _ckpt(1)) is True
    assert rec.end_epoch(_row(2, 0.7), _ckpt(2)) is True
    assert rec.end_epoch(_row(3, 0.6), _ckpt(3)) is False
    ck = run.checkpoints_dir
    load = lambda name: torch.load(ck / name, weights_only=True)  # noqa: E731
    assert load("best.ckpt")["epoch"] == 2 and load("last.ckpt")["epoch"] == 3
    assert (ck / "epoch=002.ckpt").read_bytes() == (ck / "best.ckpt").read_bytes()  # serialised once, same bytes
    modes = {stat.S_IMODE((ck / n).stat().st_mode) for n in ("epoch=001.ckpt", "last.ckpt", "best.ckpt")}
    assert len(modes) == 1  # best/last readable like the epoch files (not mkstemp's 0600)
    assert not [p for p in ck.iterdir() if p.name.startswith(".")]  # no temporaries left
    assert [r["epoch"] for r in run.metrics()] == [1, 2, 3] and rec.best_epoch == 2
    ends = [e for e in events if e.kind == "epoch_end"]
    assert [e.epoch for e in ends] == [0, 1, 2] and ends[1].metrics["val_acc"] == 0.7
    on_disk, _ = read_events(run.path)  # the explorer's view: events.jsonl, always written
    assert [e.kind for e in on_disk] == ["run_start", "epoch_end", "epoch_end", "epoch_end"]


def test_a_resumed_epoch_replaces_its_row_and_best_is_replayed(run):
    rec = RunRecorder(run, "val_acc")
    rec.end_epoch(_row(1, 0.5), _ckpt(1))
    rec.end_epoch(_row(2, 0.8), _ckpt(2))
    # killed after epoch 3's row, before its checkpoint: the resumed run records epoch 3 again
    run.write_metrics(run.metrics() + [_row(3, 0.1)])
    again = RunRecorder(run, "val_acc")
    assert again.best_epoch == 2
    again.end_epoch(_row(3, 0.6), _ckpt(3))
    assert [(r["epoch"], r["val_acc"]) for r in run.metrics()] == [(1, 0.5), (2, 0.8), (3, 0.6)]
    assert torch.load(run.checkpoints_dir / "best.ckpt", weights_only=True)["epoch"] == 2


def test_summary_is_written_before_the_report_which_sees_it_whole(run):
    rec = RunRecorder(run, "val_loss")
    rec.end_epoch(_row(1, 0.5, val_loss=0.9))
    rec.end_epoch(_row(2, 0.4, val_loss=0.7))
    seen = {}

    def report(summary):
        seen.update(json.loads((run.path / "summary.json").read_text()))
        (run.path / "report.html").write_text(f"<p>{summary['extra']}</p>")
        return {"curves": run.path / "plots" / "curves.png"}

    res = rec.finish({"test_acc": 0.75, "extra": "added by the verb"}, report)
    assert seen == res.summary == {"test_acc": 0.75, "extra": "added by the verb", "best_epoch": 2, "best_by": "val_loss"}
    assert isinstance(res, RunResult) and res.test_acc == 0.75 and res.best_epoch == 2 and res["extra"] == "added by the verb"
    assert res["run"] == str(run.path) and len(res.history) == 2
    assert "extra" in res and "cv_mean_acc" not in res and res.get("cv_mean_acc", 0) == 0
    last = read_events(run.path)[0][-1]
    assert last.kind == "run_end" and last.message == "ok" and last.metrics["test_acc"] == 0.75


def test_a_failing_listener_warns_and_the_run_goes_on(run):
    def broken(ev):
        raise RuntimeError("display gone")

    rec = RunRecorder(run, "val_acc", [broken])
    with pytest.warns(RuntimeWarning, match="display gone"):
        rec.end_epoch(_row(1, 0.5), _ckpt(1))
    assert (run.checkpoints_dir / "best.ckpt").is_file()


def test_write_checkpoint_writes_beside_the_target_never_through_tmpdir(tmp_path, monkeypatch):
    import tempfile

    calls = []
    real = tempfile.mkstemp
    monkeypatch.setattr(tempfile, "mkstemp", lambda *a, **k: calls.append(k.get("dir")) or real(*a, **k))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "elsewhere"))
    a, b = write_checkpoint(_ckpt(7), tmp_path / "ck" / "a.ckpt", tmp_path / "ck" / "b.ckpt")
    assert calls == [a.parent, b.parent]
    assert torch.load(a, weights_only=True)["epoch"] == 7 and a.read_bytes() == b.read_bytes()
    assert stat.S_IMODE(a.stat().st_mode) == 0o666 & ~_umask()


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def test_bar_listener_draws_epochs_from_events(tmp_path):
    import io

    from convlens.reports.progress import TqdmBar

    out = io.StringIO()
    bar = TqdmBar(file=out)
    for ev in (RunEvent("run_start", total=2), RunEvent("epoch_start", epoch=0, total=10),
               RunEvent("step", epoch=0, step=5, total=10, metrics={"loss": 0.25}),
               RunEvent("epoch_end", epoch=0, metrics={"val_acc": 0.875, "lr": 0.001}), RunEvent("run_end", message="ok")):
        bar(ev)
    text = out.getvalue()
    assert "Epoch 1/2" in text and "loss=0.25" in text and "val_acc=0.875" in text and "10/10" in text


def test_bar_listener_shows_an_epoch_without_steps_as_one_line_of_metrics():
    # a linear head on cached features reports whole epochs only; it drew "0step [00:00, ?step/s]" 13 times
    import io

    from convlens.reports.progress import TqdmBar

    out = io.StringIO()
    bar = TqdmBar(file=out)
    for ev in (RunEvent("run_start", total=13), RunEvent("epoch_start", epoch=0),
               RunEvent("epoch_end", epoch=0, metrics={"train_loss": 0.2861, "val_acc": 0.974, "seconds": 0.01})):
        bar(ev)
    last = out.getvalue().replace("\n", "\r").split("\r")[-2]
    assert last == "Epoch 1/13, train_loss=0.286, val_acc=0.974"  # tqdm keeps 3 significant digits
