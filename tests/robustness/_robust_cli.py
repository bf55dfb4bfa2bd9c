"""Helpers of the robustness tests: run the real ``convlens`` command in a subprocess."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def cli_env(tmp_path: Path | None = None, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("CONVLENS_THREADS", "1")
    if tmp_path is not None:
        env.setdefault("CONVLENS_CACHE", str(tmp_path / "cache"))
    env.update(extra)
    return env


def run_cli(args: list[str], cwd: Path, timeout: float = 240, **extra: str) -> subprocess.CompletedProcess:
    """``python -m convlens ARGS`` in ``cwd``; stdout/stderr as text."""
    return subprocess.run([sys.executable, "-m", "convlens", *args], cwd=cwd, env=cli_env(cwd, **extra), check=False,
                          capture_output=True, text=True, timeout=timeout)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """Assert the command failed the way a user's mistake should: exit 2, one stderr line, no
    traceback; return that line."""
    err = proc.stderr.strip()
    assert proc.returncode == 2, (proc.returncode, err[-3000:])
    assert "Traceback" not in err, err[-3000:]
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err[-3000:]
    return lines[0]


@pytest.fixture
def cli(tmp_path):
    def go(*args: str, timeout: float = 240, **extra: str) -> subprocess.CompletedProcess:
        return run_cli(list(args), tmp_path, timeout=timeout, **extra)

    return go
