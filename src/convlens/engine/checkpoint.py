"""Checkpoints: one format for every run, rebuildable into a model by name.

A checkpoint is a dict read with ``torch.load(weights_only=True)``::

    {"state_dict": {"model.<key>": tensor, ...},    # Lightning's layout
     "convlens": {"model_name", "model_kwargs", "num_classes", "classes", "pretrained_cfg"},
     "epoch": int, ...}                              # plus Lightning's loop/optimizer state

A checkpoint may name a ``"base"`` file beside it whose weights it extends (feature-extraction
runs: one frozen ``backbone.ckpt``, the head per epoch); :func:`read_checkpoint` joins them.
Every file is written by :func:`convlens.runs.write_checkpoint`.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..errors import CheckpointError, ConvlensError
from ..runs import RunDir, write_checkpoint

PREFIX = "model."


def checkpoint_meta(model_name: str, classes: list[str], model_kwargs: dict[str, Any] | None = None,
                    pretrained_cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    """The one checkpoint meta: what rebuilds a model (``create_model(model_name, num_classes,
    **model_kwargs)``), its class names, and the preprocessing its weights expect."""
    keep = ("mean", "std", "input_size", "interpolation", "crop_pct", "crop_mode", "num_classes", "weights", "dataset")
    pcfg = {k: (tuple(v) if isinstance(v, list) else v) for k, v in (pretrained_cfg or {}).items() if k in keep}
    return {"model_name": model_name, "model_kwargs": dict(model_kwargs or {}), "num_classes": len(classes),
            "classes": list(classes), "pretrained_cfg": pcfg}


def model_meta(model: nn.Module, model_name: str, classes: list[str], model_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """:func:`checkpoint_meta` of ``model`` (its ``pretrained_cfg``)."""
    return checkpoint_meta(model_name, classes, model_kwargs, getattr(model, "pretrained_cfg", None))


def save_model_checkpoint(path: str | os.PathLike, model: nn.Module, meta: dict[str, Any], epoch: int | None = None,
                          extra: dict[str, Any] | None = None) -> Path:
    """Write ``model``'s weights and ``meta`` in the run checkpoint format, atomically."""
    ckpt = {"state_dict": {PREFIX + k: v.detach().cpu() for k, v in model.state_dict().items()},
            "convlens": meta, "epoch": epoch if epoch is not None else -1, **(extra or {})}
    return write_checkpoint(ckpt, path)[0]


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to replace
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({first}); it may be truncated or from an untrusted source") from exc
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "convlens" not in ckpt:
        raise CheckpointError(f"{path}: not a convlens checkpoint (no state_dict/convlens meta); for plain weights use --weights")
    if ckpt.get("base"):
        ckpt["state_dict"] = {**_base_state_dict(path, ckpt["base"]), **ckpt["state_dict"]}
    return ckpt


def _base_state_dict(path: Path, base: str) -> dict[str, torch.Tensor]:
    """The frozen weights a head-only checkpoint builds on (``checkpoints/backbone.ckpt``)."""
    if Path(base).name != base:
        raise CheckpointError(f"{path}: its base {base!r} must be a file beside it")
    base_path = path.parent / base
    if not base_path.is_file():
        raise CheckpointError(f"{path}: holds only the trained head; the frozen backbone {base_path} is missing "
                              "(copy the whole run folder)")
    try:
        blob = torch.load(base_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"{base_path}: not a readable checkpoint; it may be truncated (rerun the transfer)") from exc
    if not isinstance(blob, dict) or not isinstance(blob.get("state_dict"), dict):
        raise CheckpointError(f"{base_path}: not a convlens backbone checkpoint (no state_dict)")
    return blob["state_dict"]


def checked_meta(meta: Any, source: str) -> dict[str, Any]:
    """``ckpt['convlens']`` if it can rebuild a model and name its outputs, else one line saying
    what is wrong with it (not a KeyError or an IndexError after the prediction)."""
    if not isinstance(meta, dict):
        raise CheckpointError(f"{source}: its convlens metadata is a {type(meta).__name__}, not a mapping; "
                              "the file was not written by convlens (or was edited)")
    if not isinstance(meta.get("model_name"), str) or not meta["model_name"]:
        raise CheckpointError(f"{source}: its convlens metadata lacks model_name; the file was not written by convlens")
    classes, n = meta.get("classes"), meta.get("num_classes")
    if not isinstance(classes, (list, tuple)) or not isinstance(n, int) or isinstance(n, bool) or len(classes) != n or n < 2:
        got = len(classes) if isinstance(classes, (list, tuple)) else type(classes).__name__
        raise CheckpointError(f"{source}: its metadata names {got} classes for num_classes={n!r}; a classifier needs "
                              "one name per output and at least two")
    if not isinstance(meta.get("model_kwargs", {}), dict):
        raise CheckpointError(f"{source}: its model_kwargs are not a mapping; the file was not written by convlens")
    return dict(meta)


def model_from_checkpoint(ckpt: dict[str, Any], source: str = "checkpoint") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model named in ``ckpt['convlens']`` and load its weights (strictly)."""
    from ..models import create_model
    from .guards import non_finite_parameters

    meta = checked_meta(ckpt["convlens"], source)
    if bad := non_finite_parameters(ckpt["state_dict"].items()):  # a diverged run's weights: every prediction would be "nan%"
        raise CheckpointError(f"{source}: {len(bad)} weight tensors hold inf/NaN (e.g. {bad[0]}); the run diverged, "
                              "retrain with a lower --lr")
    model = create_model(meta["model_name"], pretrained=False, num_classes=meta["num_classes"], **meta.get("model_kwargs", {}))
    load_state_dict_checked(model, ckpt["state_dict"], source, meta["model_name"])
    model.pretrained_cfg = {**(getattr(model, "pretrained_cfg", {}) or {}), **meta.get("pretrained_cfg", {})}
    model.eval()
    meta["epoch"] = ckpt.get("epoch")
    return model, meta


def load_state_dict_checked(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str, expected: str) -> None:
    """``load_state_dict(strict=True)`` with a one-line error instead of a key dump."""
    sd = {k[len(PREFIX):]: v for k, v in state_dict.items() if k.startswith(PREFIX)} or dict(state_dict)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        own = model.state_dict()
        missing = [k for k in own if k not in sd]
        unexpected = [k for k in sd if k not in own]
        shape = [k for k in sd if k in own and own[k].shape != sd[k].shape]
        raise CheckpointError(
            f"{source}: weights do not fit model {expected!r} ({len(missing)} missing, {len(unexpected)} unexpected, "
            f"{len(shape)} of another shape, e.g. {(missing + unexpected + shape)[:1]}); it was saved from another architecture") from exc


def epoch_checkpoints(run_path: str | os.PathLike) -> list[tuple[int, Path]]:
    """``[(epoch, path)]`` of a run's per-epoch checkpoints, epochs counted from 1."""
    found = (Path(run_path) / "checkpoints").glob("epoch=*.ckpt")
    return sorted((int(m.group(1)), p) for p in found if (m := re.search(r"epoch=(\d+)\.ckpt$", p.name)))


def resolve_checkpoint(run_or_ckpt: str | os.PathLike, which: str | int = "best") -> Path:
    p = Path(run_or_ckpt)
    if p.is_file():
        return p
    if not p.exists():
        raise ConvlensError(f"{p}: no such run folder or checkpoint")
    run = RunDir.open(p)
    if isinstance(which, int) or str(which).isdigit():
        have = dict(epoch_checkpoints(run.path))
        if int(which) not in have:
            raise ConvlensError(f"{p}: no checkpoint for epoch {which}; it has epochs {list(have)}")
        return have[int(which)]
    for name in ([f"{which}.ckpt"] + (["last.ckpt"] if which == "best" else [])):
        if (run.checkpoints_dir / name).is_file():
            return run.checkpoints_dir / name
    raise ConvlensError(f"{p}: no {which}.ckpt in {run.checkpoints_dir}; the run saved no checkpoint yet (did it finish an epoch?)")


def load_run_model(run_or_ckpt: str | os.PathLike, which: str | int = "best") -> tuple[nn.Module, dict[str, Any]]:
    """The trained model of a run folder (``best``, ``last`` or an epoch) or of a ``.ckpt`` file:
    ``(model in eval mode, meta)``; ``meta`` has ``classes`` and ``pretrained_cfg`` (the
    preprocessing the model was trained with)."""
    path = resolve_checkpoint(run_or_ckpt, which)
    return model_from_checkpoint(read_checkpoint(path), str(path))
