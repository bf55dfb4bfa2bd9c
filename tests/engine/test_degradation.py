"""The degradation verdict and the compare budget."""
from __future__ import annotations

import pytest

from convlens.engine.degradation import degradation_verdict, parse_budget, training_error_figure
from convlens.errors import ConvlensError


def _hist(errors):
    return [{"epoch": i + 1, "train_acc": 1 - e} for i, e in enumerate(errors)]


def test_parse_budget():
    assert parse_budget("5000x8") == (5000, 8)
    assert parse_budget(" 2000X3 ") == (2000, 3)
    for bad in ("5000", "x8", "50x8", "5000x0", "5k x 8"):
        with pytest.raises(ConvlensError, match="--budget"):
            parse_budget(bad)


def test_verdict_reads_the_last_two_epochs():
    h = {"plain20": _hist([0.8, 0.62, 0.60]), "plain56": _hist([0.9, 0.83, 0.81]),
         "resnet20": _hist([0.8, 0.55, 0.53]), "resnet56": _hist([0.85, 0.52, 0.50])}
    v = degradation_verdict(h)
    assert v[0].startswith("plain56 training error 82.0% vs plain20 61.0%") and v[0].endswith("the deeper plain net trains worse")
    assert v[1].startswith("resnet56 training error 51.0% vs resnet20 54.0%") and "at least as well" in v[1]
    h["plain56"] = _hist([0.9, 0.5, 0.5])
    assert degradation_verdict(h)[0].endswith("no degradation seen at this budget")
    assert degradation_verdict({"dnn": _hist([0.1]), "cnn": _hist([0.1])}) == []
    fig = training_error_figure(h)
    lines = fig.axes[0].get_lines()
    assert [ln.get_linestyle() for ln in lines] == ["--", "--", "-", "-"]
    assert list(lines[1].get_ydata()) == pytest.approx([90, 50, 50])


def test_compare_passes_model_kwargs_to_every_model(tmp_path, capsys):
    import json

    from convlens.cli import main

    assert main(["compare", "--data", "fashion-mnist", "--models", "resnet20,plain20", "--budget", "200x1", "--limit-test", "100",
                 "--model-kwargs", "zero_init_residual=true", "--out", str(tmp_path), "--name", "zi", "--no-progress"]) == 0
    for model in ("resnet20", "plain20"):
        config = json.loads((tmp_path / "zi" / model / "config.json").read_text())["config"]
        assert config["model_kwargs"] == {"zero_init_residual": True} and config["epochs"] == 1
    assert "report:" in capsys.readouterr().out
