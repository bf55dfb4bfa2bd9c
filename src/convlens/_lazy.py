"""Packages that export names from their sub-modules without importing them up front (``import
convlens.engine`` must not pay for Lightning; the CLI parses arguments before torch is imported)."""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, where: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``where`` maps an exported name to the module
    holding it, relative to the package (``"training"``) or absolute (``"convlens.engine.prediction"``)."""

    def __getattr__(name: str) -> Any:
        if name in where:
            module = where[name]
            return getattr(importlib.import_module(module if module.startswith("convlens") else f"{package}.{module}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(where)

    return __getattr__, __dir__
