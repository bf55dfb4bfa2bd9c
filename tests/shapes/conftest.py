"""Helpers for the shapes tests: models built once per session, the CLI with only our verbs."""
from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def get_model():
    """``get_model(name, **kwargs)``: big models (vgg16: 138M parameters) are built once per
    session and shared by the tests (never with pretrained weights: nothing is downloaded)."""
    from convlens.models import create_model

    cache: dict[str, Any] = {}

    def get(name: str, **kwargs: Any):
        key = name + repr(sorted(kwargs.items()))
        if key not in cache:
            cache[key] = create_model(name, pretrained=False, **kwargs)
        return cache[key]

    return get


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """``convlens`` through its real ``main`` (error handling included), with only the shapes
    verbs registered so the test does not depend on other packages' progress."""
    import convlens.cli as cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", ("convlens.shapes.cli",))
    monkeypatch.setenv("COLUMNS", "200")

    def run(*argv: str) -> tuple[int, str, str]:
        rc = cli.main(list(argv))
        out, err = capsys.readouterr()
        return rc, out, err

    return run
