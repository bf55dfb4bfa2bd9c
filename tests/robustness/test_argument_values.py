"""Values that mean nothing are refused in one line, exit 2, while the command line is parsed:
before torch is imported (they took 11-13 s of start-up, and several ran anyway)."""
from __future__ import annotations

import argparse
import subprocess
import sys

import pytest
from _robust_cli import cli_env, one_line_error

from convlens import argtypes as A

BAD = [
    (["train", "--limit-train", "-5"], "--limit-train"),       # trained on 59,945 images
    (["train", "--threads", "0"], "--threads"),
    (["train", "--threads", "-2"], "--threads"),
    (["train", "--lr", "inf"], "--lr"),                         # all-NaN model "reporting" 13%
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--weight-decay", "nan"], "--weight-decay"),
    (["train", "--epochs", "0"], "--epochs"),
    (["transfer", "--data", "x", "--epochs", "0"], "--epochs"),  # ran 13 epochs
    (["transfer", "--data", "x", "--image-size", "0"], "--image-size"),
    (["transfer", "--data", "x", "--lr", "inf"], "--lr"),
    (["predict", "run", "a.jpg", "--top", "0"], "--top"),
    (["predict", "run", "a.jpg", "--top", "-1"], "--top"),
    (["explain", "report", "run", "--wrong", "-1"], "--wrong"),  # wrote 93 pages and went on
    (["explain", "feature-maps", "m", "a.jpg", "--k", "0"], "--k"),
    (["explain", "feature-maps", "m", "a.jpg", "--k", "-1"], "--k"),
    (["graph", "train", "--dropout", "2"], "--dropout"),
    (["graph", "train", "--epochs", "0"], "--epochs"),
    (["graph", "train", "--lr", "nan"], "--lr"),
    (["graph", "train", "--lr", "1e6x"], "--lr"),
    (["graph", "train", "--hidden", "0"], "--hidden"),
    (["graph", "train", "--folds", "1"], "--folds"),
]

PROBE = """
import sys
from convlens.cli import main
try:
    rc = main(sys.argv[1:])
except SystemExit as e:
    rc = e.code
print("TORCH_IMPORTED" if "torch" in sys.modules else "TORCH_NOT_IMPORTED")
sys.exit(rc)
"""


def _probe(args: list[str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, env=cli_env(cwd), capture_output=True, check=False,
                          text=True, timeout=60)


@pytest.mark.parametrize("args,flag", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_meaningless_value_is_one_line_before_torch(args, flag, tmp_path):
    proc = _probe(args, tmp_path)
    line = one_line_error(proc)
    assert flag in line, line
    assert proc.stdout.strip() == "TORCH_NOT_IMPORTED"


@pytest.mark.parametrize("verb", [["train"], ["transfer", "--data", "x"], ["explain", "filters", "m"], ["graph", "train"]])
def test_out_that_is_a_file_is_refused(verb, tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    proc = _probe([*verb, "--out", "afile"], tmp_path)
    line = one_line_error(proc)
    assert "--out" in line and "is a file" in line, line
    assert proc.stdout.strip() == "TORCH_NOT_IMPORTED"


def test_checkers_accept_what_means_something():
    assert A.positive_int("3") == 3
    assert A.non_negative_int("0") == 0
    assert A.finite_positive_float("1e-3") == 1e-3
    assert A.finite_non_negative_float("0") == 0.0
    assert A.probability("0.5") == 0.5 and A.probability("0") == 0.0
    assert A.fraction("0.2") == 0.2
    assert A.at_least(2)("10") == 10
    for fn, text in [(A.positive_int, "1.5"), (A.finite_positive_float, "-inf"), (A.probability, "1"),
                     (A.fraction, "0"), (A.finite_non_negative_float, "-1e-9"), (A.at_least(2), "1")]:
        with pytest.raises(argparse.ArgumentTypeError):
            fn(text)
