"""Every public name of every package resolves to what it says, never to a same-named sub-module."""
import importlib
import types

import pytest

PACKAGES = ["convlens", "convlens.engine", "convlens.data", "convlens.models", "convlens.reports", "convlens.shapes",
            "convlens.transfer", "convlens.explain", "convlens.graph", "convlens.serve"]


@pytest.mark.parametrize("package", PACKAGES)
def test_exports_are_not_shadowed_by_submodules(package):
    pkg = importlib.import_module(package)
    names = list(getattr(pkg, "__all__", [])) or list(getattr(pkg, "_LAZY", {}))
    assert names
    for name in names:  # import every sub-module first: that is what shadows a lazy name
        getattr(pkg, name)
    for name in names:
        assert not isinstance(getattr(pkg, name), types.ModuleType), f"{package}.{name} is a module"
