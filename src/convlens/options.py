"""Options declared once: a config dataclass field carries its default, help and value check,
and the command line is derived from it (``add_flags``/``from_args``).

    epochs: int = opt(5, "passes over the training set", low=1)

gives ``--epochs N`` (refusing 0, -1 or ``inf`` in one line while parsing, before torch is
imported) and the same check when Python code builds the config (``__post_init__``).
"""
from __future__ import annotations

import argparse
import math
from dataclasses import MISSING, asdict, field, fields
from typing import Any, Callable

from .errors import ConvlensError


def opt(default: Any = None, help: str = "", *, choices: tuple[Any, ...] | None = None, low: float | None = None,
        high: float | None = None, above: float | None = None, below: float | None = None, cli: bool = True,
        factory: Callable[[], Any] | None = None, **argparse_kw: Any) -> Any:
    """A dataclass field with its help text and checks: ``choices``; ``low <= v``, ``v <= high``,
    ``above < v``, ``v < below``; numbers must be finite. ``cli=False``: no flag."""
    meta = dict(help=help, choices=choices, low=low, high=high, above=above, below=below, cli=cli, argparse=argparse_kw)
    return field(default_factory=factory, metadata=meta) if factory else field(default=default, metadata=meta)


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def problem(value: Any, meta: dict[str, Any]) -> str | None:
    """Why ``value`` is refused by the field's checks (``None``: accepted)."""
    if value is None or isinstance(value, (bool, dict, list)):
        return None
    if meta.get("choices") and value not in meta["choices"]:
        return f"choose one of {', '.join(map(str, meta['choices']))}"
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            return "must be a finite number"
        for key, ok, text in (("low", lambda b: value >= b, "at least"), ("high", lambda b: value <= b, "at most"),
                              ("above", lambda b: value > b, "above"), ("below", lambda b: value < b, "below")):
            if meta.get(key) is not None and not ok(meta[key]):
                return f"must be {text} {meta[key]}"
    return None


class Options:
    """Mixin of config dataclasses: checks every field on construction; ``to_dict``/``from_dict``."""

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            if why := problem(getattr(self, f.name), f.metadata):
                raise ConvlensError(f"{flag_name(f.name)} {getattr(self, f.name)!r}: {why}")
        self.check()

    def check(self) -> None:
        """Checks across fields (a subclass's)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in d.items() if k in names})


def checker(kind: type, **meta: Any) -> Callable[[str], Any]:
    """An argparse ``type=`` parsing ``kind`` (``int`` or ``float``) and refusing what :func:`problem`
    refuses under ``meta``'s bounds (``low``/``high``/``above``/``below``, as in :func:`opt`): a flag
    declared by hand is checked by the same rule as a dataclass field."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole number' if kind is int else 'number'}") from None
        if why := problem(value, meta):
            raise argparse.ArgumentTypeError(f"{text}: {why}")
        return value

    parse.__name__ = kind.__name__
    return parse


def add_flags(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = (), **overrides: dict[str, Any]) -> None:
    """One flag per field of ``cls`` (``--no-x`` for a field that defaults to True). Flags default
    to ``None``, meaning the dataclass's own default (written once, there); ``overrides`` change a
    flag's argparse keywords (e.g. ``required=True``)."""
    for f in fields(cls):
        meta = f.metadata
        if f.name in skip or not meta.get("cli", True):
            continue
        default = f.default if f.default is not MISSING else None
        typ = str(f.type)
        kw: dict[str, Any] = {"default": None, "help": meta.get("help", ""), **meta.get("argparse", {})}
        name = flag_name(f.name)
        if typ == "bool":
            kw["action"] = "store_false" if default else "store_true"
            name = flag_name(f"no_{f.name}") if default else name
            kw["dest"] = f.name
        else:
            kind = int if typ.startswith("int") else float if typ.startswith("float") else str
            if meta.get("choices"):
                kw["choices"] = list(meta["choices"])
            elif kind is not str:
                kw["type"] = checker(kind, **meta)
            if default is not None:
                kw["help"] = f"{kw['help']} (default {default})".strip()
        kw.update(overrides.get(f.name, {}))
        parser.add_argument(name, **kw)


def from_args(cls: type, args: argparse.Namespace, **over: Any) -> Any:
    """``cls`` from parsed flags: flags not given keep the dataclass default; ``over`` wins."""
    given = {f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name, None) is not None}
    return cls(**{**given, **over})
