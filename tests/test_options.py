"""Flags derived from the config dataclasses: defaults written once, checks shared by the
command line and Python code."""
from __future__ import annotations

import argparse
from dataclasses import fields

import pytest

from convlens.engine.config import TrainConfig
from convlens.errors import ConvlensError
from convlens.options import add_flags, from_args
from convlens.transfer.config import TransferConfig


def _parser(cls, **over):
    p = argparse.ArgumentParser(prog="t", exit_on_error=True)
    add_flags(p, cls, **over)
    return p


@pytest.mark.parametrize("cls", [TrainConfig, TransferConfig])
def test_every_field_is_a_flag_and_no_flags_means_the_dataclass_defaults(cls):
    p = _parser(cls)
    dests = {a.dest for a in p._actions}
    assert {f.name for f in fields(cls) if f.metadata.get("cli", True)} <= dests
    assert from_args(cls, p.parse_args([])) == cls()


def test_given_flags_become_the_config():
    args = _parser(TrainConfig).parse_args(["--epochs", "3", "--lr", "0.01", "--optimizer", "sgd", "--no-progress",
                                            "--limit-train", "200", "--download", "--name", "x"])
    cfg = from_args(TrainConfig, args, model_kwargs={"width": 4})
    assert (cfg.epochs, cfg.lr, cfg.optimizer, cfg.progress, cfg.limit_train, cfg.download, cfg.name) == \
        (3, 0.01, "sgd", False, 200, True, "x")
    assert cfg.model_kwargs == {"width": 4} and cfg.batch_size == TrainConfig().batch_size


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "--epochs: 0: must be at least 1"),
    (["--lr", "inf"], "--lr: inf: must be a finite number"),
    (["--lr", "0"], "--lr: 0: must be above 0"),
    (["--limit-train", "-5"], "--limit-train: -5: must be at least 1"),
    (["--momentum", "1"], "--momentum: 1: must be below 1"),
    (["--batch-size", "ten"], "'ten' is not a whole number"),
])
def test_meaningless_values_are_refused_while_parsing(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        _parser(TrainConfig).parse_args(argv)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert info.value.code == 2 and message in err


def test_python_code_gets_the_same_checks():
    with pytest.raises(ConvlensError, match=r"--weight-decay nan: must be a finite number"):
        TrainConfig(weight_decay=float("nan"))
    with pytest.raises(ConvlensError, match=r"--strategy 'x': choose one of feature-extract, fine-tune, auto"):
        TransferConfig(strategy="x")
    with pytest.raises(ConvlensError, match="give one of them"):
        TransferConfig(unfreeze=1, unfreeze_from="blocks.5")
    assert TrainConfig.from_dict({**TrainConfig(epochs=2).to_dict(), "unknown": 1}).epochs == 2
